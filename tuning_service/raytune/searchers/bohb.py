"""BOHB: Bayesian optimisation (a TPE-like density model) over Hyperband's budgets, Ray's TuneBOHB."""

from __future__ import annotations

import math
from typing import Annotated, Any

from tuning_service.core.registry import AtLeast, AtMost
from tuning_service.core.space import Choice, Fixed, Float, Int, Param, Space
from tuning_service.raytune.searchers import SearchPlan


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    top_n_percent: Annotated[int, AtLeast(1), AtMost(99)] = 15,
    random_fraction: Annotated[float, AtLeast(0), AtMost(1)] = 1 / 3,
    bandwidth_factor: Annotated[float, AtLeast(0, strict=True)] = 3,
) -> SearchPlan:
    """hpbandster's BOHB model (the bohb extra), fed every rung result by the `bohb` scheduler.

    The best ``top_n_percent`` of results at the largest budget seen so far shape the
    model; ``random_fraction`` of the suggestions are drawn at random regardless.
    """
    searcher = _space_bohb_class()(
        space,
        seed=seed,
        points_to_evaluate=points_to_evaluate,
        max_concurrent=max_concurrent or 0,
        bohb_config={
            "top_n_percent": top_n_percent,
            "random_fraction": random_fraction,
            "bandwidth_factor": bandwidth_factor,
        },
    )
    return SearchPlan(searcher, space.to_ray())


def _space_bohb_class() -> type:
    from ray.tune.search.bohb import TuneBOHB

    class SpaceBOHB(TuneBOHB):
        """TuneBOHB over our space, so every searcher draws the same values.

        Tune's own conversion drops a range's step (BOHB would run units=37 in a range
        stepped by 32) and hands choices back as NumPy scalars. Here choices and stepped
        ranges are indices into their values, decoded into plain Python values.
        """

        def __init__(self, space: Space, *, points_to_evaluate: list[dict[str, Any]] | None, **kw: Any):
            self._ours = space
            self._searched = {name: p for name, p in space.items() if _searched(p)}
            # A parameter with one possible value is no dimension for BOHB, but Tune needs its value.
            self._constants = {
                name: _only_value(p)
                for name, p in space.items()
                if name not in self._searched and not isinstance(p, Fixed)
            }
            encoded = [
                {n: _encode(p, point[n]) for n, p in self._searched.items()}
                for point in points_to_evaluate or ()
            ]
            super().__init__(points_to_evaluate=encoded or None, **kw)

        def set_search_properties(
            self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
        ) -> bool:
            """Called by Tune with the sweep's metric and mode; the space is ours, not Tune's ``config``."""
            if self._space:
                return False
            self._space = _config_space(self._searched)
            self._metric, self._mode = metric or self._metric, mode or self._mode
            self._setup_bohb()
            return True

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            # A resumed sweep may report a trial its restored searcher never suggested: the
            # driver was killed between Tune's snapshot and the searcher's. Its config is not
            # known here, so it cannot inform the model; TuneBOHB would fail on a KeyError.
            if trial_id in self.trial_to_params:
                super().on_trial_result(trial_id, result)

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            self.trial_to_params.setdefault(trial_id, {})
            super().on_trial_complete(trial_id, result, error)

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            config = super().suggest(trial_id)
            if config is None:
                return None
            return {**self._constants, **{name: _decode(self._ours[name], v) for name, v in config.items()}}

    return SpaceBOHB


def _only_value(param: Param) -> Any:
    return param.values[0] if isinstance(param, Choice) else param.low  # type: ignore[attr-defined]


def _searched(param: Param) -> bool:
    if isinstance(param, Fixed):
        return False
    return len(param.values) > 1 if isinstance(param, Choice) else param.low < param.high  # type: ignore[attr-defined]


def _config_space(params: dict[str, Param]) -> Any:
    import ConfigSpace as CS

    space = CS.ConfigurationSpace()
    for name, param in params.items():
        if isinstance(param, Choice):
            space.add(CS.CategoricalHyperparameter(name, choices=list(range(len(param.values)))))
        elif param.step:  # type: ignore[attr-defined]
            space.add(CS.UniformIntegerHyperparameter(name, lower=0, upper=_steps(param)))
        elif isinstance(param, Int):
            space.add(CS.UniformIntegerHyperparameter(name, lower=param.low, upper=param.high, log=param.log))
        elif isinstance(param, Float):
            space.add(CS.UniformFloatHyperparameter(name, lower=param.low, upper=param.high, log=param.log))
    return space


def _steps(param: Any) -> int:
    """The last step's index; the epsilon keeps 0.5 / 0.1 (4.999... in floats) at 5."""
    return int(math.floor((param.high - param.low) / param.step + 1e-9))


def _encode(param: Param, value: Any) -> Any:
    if isinstance(param, Choice):
        return param.values.index(value)
    if param.step:  # type: ignore[attr-defined]
        return round((value - param.low) / param.step)  # type: ignore[attr-defined]
    return value


def _decode(param: Param, value: Any) -> Any:
    if isinstance(param, Choice):
        return param.values[int(value)]
    if param.step:  # type: ignore[attr-defined]
        decoded = param.low + int(value) * param.step  # type: ignore[attr-defined]
        return decoded if isinstance(param, Int) else round(decoded, 12)
    return int(value) if isinstance(param, Int) else float(value)
