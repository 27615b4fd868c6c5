"""Searcher registry: a name in a file or on the command line -> a Ray Tune search plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuning_service.registry import Registry, check_options
from tuning_service.space import Space

__all__ = ["SEARCHERS", "SearchPlan", "create_searcher", "limit_concurrency", "validate_searcher"]

SEARCHERS = Registry("searcher")
SEARCHERS.add_lazy("grid", "tuning_service.searchers.grid:build")
SEARCHERS.add_lazy("random", "tuning_service.searchers.random:build")
SEARCHERS.add_lazy("optuna", "tuning_service.searchers.optuna:build", aliases=("tpe", "bayesian", "bayes"))
SEARCHERS.add_lazy("hyperopt", "tuning_service.searchers.hyperopt:build", aliases=("hyperopt-tpe",))

# Set by the engine, never by users: the seed, and the configs to evaluate first (warm start).
_RESERVED = ("seed", "points_to_evaluate", "max_concurrent")


@dataclass(frozen=True)
class SearchPlan:
    """What Ray Tune needs from a searcher: the algorithm, the space, and the trial count.

    ``num_samples`` is set by searchers that decide it themselves (grid runs every
    point once); ``None`` means the sweep's own ``num_samples``.
    """

    search_alg: Any
    param_space: dict[str, Any]
    num_samples: int | None = None


def limit_concurrency(searcher: Any, max_concurrent: int | None) -> Any:
    """Wrap a model-based searcher so it never has more than ``max_concurrent`` trials out."""
    if not max_concurrent:
        return searcher
    from ray.tune.search import ConcurrencyLimiter

    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def validate_searcher(name: str, space: Space, options: Mapping[str, Any]) -> None:
    """Check the name, the options and (for grid) the space, without importing Ray."""
    SEARCHERS.check(name)
    check_options("searcher", name, SEARCHERS[name], options, reserved=_RESERVED)
    if name == "grid":
        space.grid_points()  # raises for a continuous range without grid values


def create_searcher(
    name: str,
    space: Space,
    *,
    seed: int,
    points_to_evaluate: Sequence[Mapping[str, Any]] = (),
    max_concurrent: int | None = None,
    **options: Any,
) -> SearchPlan:
    """Build the searcher registered under ``name`` (unknown names and options refused).

    ``points_to_evaluate`` run first, before the searcher proposes its own; points the
    space no longer accepts are dropped with a log line (see `points.usable_points`).
    ``max_concurrent`` caps running trials: Tune's own cap ignores variant generators.
    """
    from tuning_service.searchers.points import usable_points

    build = SEARCHERS[name]
    check_options("searcher", name, build, options, reserved=_RESERVED)
    points = usable_points(space, points_to_evaluate)
    return build(space, seed=seed, points_to_evaluate=points, max_concurrent=max_concurrent, **options)
