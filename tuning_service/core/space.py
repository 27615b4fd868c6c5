"""Backend-neutral search spaces: Choice, Int, Float, Fixed; the one conversion to Ray Tune."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuning_service.core.errors import InputError

Scalar = str | int | float | bool | None

# A grid over an integer range enumerates it; past this many values it is surely a mistake.
MAX_INT_GRID = 1000
# A grid search runs every point: beyond this many it is refused before anything is listed in full.
MAX_GRID_POINTS = 100_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Param:
    """One hyperparameter; ``when`` makes it active only for some values of others.

    ``when={"optimizer": ("sgd", "nesterov")}`` means the parameter only matters
    when ``optimizer`` is one of those values. Every searcher samples it anyway
    (so no searcher has to understand conditions); `Space.effective` drops it from
    the configuration the model sees and the results record.
    """

    when: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict, kw_only=True)

    kind = "param"

    def check(self, name: str) -> None:
        """Raise InputError if this parameter cannot mean anything."""

    def to_ray(self) -> Any:
        raise NotImplementedError

    def to_optuna(self) -> Any:
        """The parameter as an Optuna distribution (what Ray's conversion of `to_ray` gives),
        without importing Ray: importance needs it in the report and the dashboard; None when
        the parameter is not searched."""
        return None

    def grid_values(self, name: str, points: int | None = None) -> Sequence[Scalar]:
        """The values a grid search runs; ``points``: how many to spread over a range without its own."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data = {"type": self.kind, **self._fields()}
        if self.when:
            data["when"] = {k: list(v) for k, v in self.when.items()}
        return data

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Param):
    """One of a finite list of values (categorical)."""

    values: tuple[Scalar, ...]
    kind = "choice"

    def check(self, name: str) -> None:
        if not self.values:
            raise InputError(f"parameter {name!r}: a choice needs at least one value, got []")
        for value in self.values:
            if not isinstance(value, str | int | float | bool | type(None)):
                raise InputError(
                    f"parameter {name!r}: choice values must be strings, numbers, booleans "
                    f"or null, got {value!r}"
                )
        if len(set(map(repr, self.values))) != len(self.values):
            raise InputError(f"parameter {name!r}: choice values repeat, got {list(self.values)}")

    def to_ray(self) -> Any:
        from ray import tune

        return tune.choice(list(self.values))

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(list(self.values))

    def grid_values(self, name: str, points: int | None = None) -> Sequence[Scalar]:
        return list(self.values)

    def contains(self, value: Any) -> bool:
        return value in self.values

    def _fields(self) -> dict[str, Any]:
        return {"values": list(self.values)}


@dataclass(frozen=True)
class Fixed(Param):
    """A constant: part of every configuration, never searched."""

    value: Scalar
    kind = "fixed"

    def to_ray(self) -> Any:
        return self.value

    def grid_values(self, name: str, points: int | None = None) -> Sequence[Scalar]:
        return [self.value]

    def contains(self, value: Any) -> bool:
        return bool(value == self.value)

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value}


@dataclass(frozen=True)
class _Range(Param):
    """Shared checks for numeric ranges: bounds, log scale and optional grid values."""

    low: float
    high: float
    step: float | None = None
    log: bool = False
    grid: tuple[float, ...] | None = None

    def check(self, name: str) -> None:
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if not _is_number(value) or not math.isfinite(value):
                raise InputError(f"parameter {name!r}: {bound} must be a finite number, got {value!r}")
        if self.low > self.high:
            raise InputError(f"parameter {name!r}: low must be <= high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise InputError(f"parameter {name!r}: a log range needs low > 0, got low={self.low}")
        if self.step is not None:
            if not _is_number(self.step) or self.step <= 0:
                raise InputError(f"parameter {name!r}: step must be > 0, got step={self.step!r}")
            if self.log:
                # Optuna refuses step with log; refusing here keeps every searcher equal.
                raise InputError(
                    f"parameter {name!r}: a range cannot have both step and log; "
                    "drop one, or list the values in a choice"
                )
        if self.grid is not None:
            if not self.grid:
                raise InputError(f"parameter {name!r}: grid needs at least one value, got []")
            outside = [v for v in self.grid if not self.contains(v)]
            if outside:
                raise InputError(
                    f"parameter {name!r}: grid values {outside} lie outside the range "
                    f"[{self.low}, {self.high}]" + (f" with step {self.step}" if self.step else "")
                )

    def _fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            data["step"] = self.step
        if self.log:
            data["log"] = True
        if self.grid is not None:
            data["grid"] = list(self.grid)
        return data


@dataclass(frozen=True)
class Int(_Range):
    """An integer range, both bounds inclusive (unlike Ray's exclusive ``randint``)."""

    low: int
    high: int
    step: int | None = None
    kind = "int"

    def check(self, name: str) -> None:
        for bound in ("low", "high", "step"):
            value = getattr(self, bound)
            if value is not None and not _is_int(value):
                raise InputError(f"parameter {name!r}: {bound} must be an integer, got {value!r}")
        super().check(name)
        step = self.step or 1
        if step > 1:
            # Ray quantizes by rounding to multiples of step; the range must sit on them.
            if self.low % step or self.high % step:
                raise InputError(
                    f"parameter {name!r}: low and high must be multiples of step, got "
                    f"low={self.low}, high={self.high}, step={step}; "
                    "or list the values in a choice"
                )

    def to_ray(self) -> Any:
        from ray import tune

        step = self.step or 1
        if self.log:
            return tune.lograndint(self.low, self.high + 1)  # Ray's upper bound is exclusive
        if step > 1:
            return tune.qrandint(self.low, self.high, step)  # inclusive upper bound
        return tune.randint(self.low, self.high + 1)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step or 1)

    def grid_values(self, name: str, points: int | None = None) -> Sequence[Scalar]:
        if self.grid is not None:
            return list(self.grid)
        step = self.step or 1
        count = (self.high - self.low) // step + 1  # counted, not listed: a range may be 10^13 long
        if points is not None and count > points:
            # Spread over the range, then back onto its integers (and steps): close ones merge.
            spread = _spread(self.low, self.high, points, self.log)
            return sorted({self.low + round((v - self.low) / step) * step for v in spread})
        if count > MAX_INT_GRID:
            raise InputError(
                f"searcher 'grid' will not enumerate {count} values of {name!r}; give grid values, "
                "use a choice, or pass --searcher-option points=N to spread N values over it"
            )
        return list(range(self.low, self.high + 1, step))

    def contains(self, value: Any) -> bool:
        if not _is_int(value) or not self.low <= value <= self.high:
            return False
        return bool((value - self.low) % (self.step or 1) == 0)


@dataclass(frozen=True)
class Float(_Range):
    """A real range, uniform or log-uniform, optionally quantized by ``step``."""

    kind = "float"

    def check(self, name: str) -> None:
        super().check(name)
        step = self.step
        if step and any(not math.isclose(b / step, round(b / step)) for b in (self.low, self.high)):
            # Ray's quniform (as Int's qrandint) quantizes onto multiples of step, from zero.
            raise InputError(
                f"parameter {name!r}: low and high must be multiples of step, got "
                f"low={self.low}, high={self.high}, step={step}; "
                "or list the values in a choice"
            )

    def to_ray(self) -> Any:
        from ray import tune

        if self.log:
            return tune.loguniform(self.low, self.high)
        if self.step:
            return tune.quniform(self.low, self.high, self.step)
        return tune.uniform(self.low, self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step or None)

    def grid_values(self, name: str, points: int | None = None) -> Sequence[Scalar]:
        if self.grid is not None:
            return list(self.grid)
        if points is None:
            raise InputError(
                f"searcher 'grid' cannot enumerate the continuous range {name!r}; give grid values, "
                "use a choice, or pass --searcher-option points=N to spread N values over it"
            )
        values = _spread(self.low, self.high, points, self.log)
        if self.step:
            # Onto the steps from low (rounded off float noise: 0.30000000000000004), never past high.
            last = math.floor((self.high - self.low) / self.step + 1e-9)
            on_steps = (self.low + min(round((v - self.low) / self.step), last) * self.step for v in values)
            return sorted({min(round(v, 12), self.high) for v in on_steps})
        return sorted({_readable(v, self.low, self.high) for v in values})

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high


def _spread(low: float, high: float, points: int, log: bool) -> list[float]:
    """``points`` values from low to high, both included: evenly spaced, or evenly in log space."""
    if points == 1 or low == high:
        return [math.sqrt(low * high) if log else (low + high) / 2]
    if log:
        ratio = math.log(high / low) / (points - 1)
        return [low, *(low * math.exp(ratio * i) for i in range(1, points - 1)), high]
    return [low, *(low + (high - low) * i / (points - 1) for i in range(1, points - 1)), high]


def _readable(value: float, low: float, high: float) -> float:
    """``value`` to 3 significant digits (1e-3, 3.16e-3, ...), kept inside [low, high]."""
    if value in (low, high) or value == 0:
        return float(value)
    rounded = float(f"{value:.3g}")
    return float(min(max(rounded, low), high))


class Space(Mapping[str, Param]):
    """An ordered, validated mapping of parameter names to parameters."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        self._params = dict(params)
        seen: dict[str, Param] = {}
        for name, param in self._params.items():
            if not isinstance(name, str) or not name:
                raise InputError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, Param):
                raise InputError(f"parameter {name!r}: expected a Choice, Int, Float or Fixed, got {param!r}")
            param.check(name)
            for other, values in param.when.items():
                ref = seen.get(other)
                if ref is None:
                    raise InputError(
                        f"parameter {name!r}: 'when' names {other!r}, which must be a parameter "
                        f"defined before it (defined so far: {', '.join(seen) or 'none'})"
                    )
                if not isinstance(ref, Choice | Fixed):
                    raise InputError(
                        f"parameter {name!r}: 'when' can only test a choice or fixed parameter, "
                        f"and {other!r} is a {ref.kind} range"
                    )
                bad = [v for v in values if not ref.contains(v)]
                if bad or not values:
                    raise InputError(
                        f"parameter {name!r}: 'when' values {bad or '[]'} are not values of {other!r} "
                        f"(accepted: {ref.grid_values(other)})"
                    )
            seen[name] = param

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"Space({self._params!r})"

    def to_ray(self) -> dict[str, Any]:
        """Ray Tune ``param_space``: every parameter, conditional ones included."""
        return {name: param.to_ray() for name, param in self._params.items()}

    def effective(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration a model sees: inactive conditional parameters removed.

        Keys of ``config`` that are not in the space (a job's fixed extras) are kept.
        """
        # Walk in the space's order: a condition names an earlier parameter, whatever
        # order the searcher returned the keys in (HyperOpt sorts them).
        out: dict[str, Any] = {}
        for name, param in self._params.items():
            if name in config and all(out.get(k, _MISSING) in v for k, v in param.when.items()):
                out[name] = config[name]
        out.update({k: v for k, v in config.items() if k not in self._params})
        return out

    def grid_points(self, points: int | None = None) -> list[dict[str, Any]]:
        """Every distinct configuration of a grid search, conditional values expanded once.

        ``points`` (the grid searcher's ``points`` option) spreads that many values over
        each range that has no grid values of its own, instead of refusing it.
        """
        configs: list[dict[str, Any]] = [{}]
        for name, param in self._params.items():
            values = param.grid_values(name, points)
            nxt: list[dict[str, Any]] = []
            for point in configs:
                if all(point.get(k, _MISSING) in v for k, v in param.when.items()):
                    nxt.extend({**point, name: value} for value in values)
                else:
                    nxt.append(point)
                if len(nxt) > MAX_GRID_POINTS:  # stop before the product fills the memory
                    raise InputError(
                        f"searcher 'grid': the space has more than {MAX_GRID_POINTS} grid points; "
                        "give fewer grid values, or use random or optuna"
                    )
            configs = nxt
        return configs

    def to_dict(self) -> dict[str, Any]:
        return {name: param.to_dict() for name, param in self._params.items()}

    def grid_size(self) -> int:
        return len(self.grid_points())

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "space") -> Space:
        """Read a space from plain data (YAML/JSON); see `param_from_data` for the forms."""
        if isinstance(data, Space):
            return data
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping of parameter names, got {type(data).__name__}")
        return cls({str(name): param_from_data(str(name), spec, where=where) for name, spec in data.items()})


_MISSING = object()

_PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "fixed": ("value",),
    "int": ("low", "high", "step", "log", "grid"),
    "float": ("low", "high", "step", "log", "grid"),
}


def _coerce_number(name: str, key: str, value: Any, *, where: str) -> Any:
    """Accept numbers written as strings (`'1e-3'` from YAML 1.1 tools or the CLI)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{where}: parameter {name!r}: {key} must be a number, got {value!r}") from None
        return int(number) if number.is_integer() and not any(c in value for c in ".eE") else number
    return value


def param_from_data(name: str, spec: Any, *, where: str = "space") -> Param:
    """Build one parameter from its plain-data form.

    Accepted forms: a list (a choice), a scalar (fixed), or a mapping with
    ``type`` in choice / int / float / fixed and that type's keys, plus
    an optional ``when`` mapping of parameter name to a value or list of values.
    """
    if isinstance(spec, Param):
        return spec
    if isinstance(spec, list):
        spec = {"type": "choice", "values": spec}
    elif not isinstance(spec, Mapping):
        spec = {"type": "fixed", "value": spec}
    spec = dict(spec)
    kind = spec.pop("type", None)
    if not isinstance(kind, str) or kind not in _PARAM_KEYS:  # a list or mapping is not hashable
        raise InputError(
            f"{where}: parameter {name!r}: unknown type {kind!r} (accepted: {', '.join(_PARAM_KEYS)})"
        )
    when_raw = spec.pop("when", None) or {}
    if not isinstance(when_raw, Mapping):
        raise InputError(f"{where}: parameter {name!r}: 'when' must map parameter names to values")
    when = {str(k): tuple(v) if isinstance(v, list | tuple) else (v,) for k, v in when_raw.items()}
    unknown = sorted(str(key) for key in set(spec) - set(_PARAM_KEYS[kind]))  # keys may be numbers
    if unknown:
        raise InputError(
            f"{where}: parameter {name!r}: unknown key {unknown[0]!r} for type {kind} "
            f"(accepted: {', '.join(_PARAM_KEYS[kind] + ('when',))})"
        )
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list | tuple):
            raise InputError(f"{where}: parameter {name!r}: choice needs a list of values, got {values!r}")
        return Choice(tuple(values), when=when)
    if kind == "fixed":
        if "value" not in spec:
            raise InputError(f"{where}: parameter {name!r}: fixed needs a value")
        return Fixed(spec["value"], when=when)
    for key in ("low", "high"):
        if spec.get(key) is None:  # absent, or written `low:` / `low: null`
            raise InputError(f"{where}: parameter {name!r}: {kind} range needs a number for {key}")
    numbers = {
        k: _coerce_number(name, k, spec[k], where=where)
        for k in ("low", "high", "step")
        if spec.get(k) is not None
    }
    grid = spec.get("grid")
    if grid is not None:
        if not isinstance(grid, list | tuple):
            raise InputError(f"{where}: parameter {name!r}: grid must be a list, got {grid!r}")
        grid = tuple(_coerce_number(name, "grid", v, where=where) for v in grid)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise InputError(f"{where}: parameter {name!r}: log must be true or false, got {log!r}")
    cls = Int if kind == "int" else Float
    if cls is Float:
        numbers = {k: float(v) if _is_number(v) else v for k, v in numbers.items()}
        grid = tuple(float(v) if _is_number(v) else v for v in grid) if grid else grid
    return cls(**numbers, log=log, grid=grid, when=when)
