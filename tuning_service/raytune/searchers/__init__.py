"""Searcher registry: a name in a file or on the command line -> a Ray Tune search plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.registry import Extra, Registry, check_options
from tuning_service.core.space import Space
from tuning_service.core.spec import DEFAULT_SCHEDULER, PAIRED_SCHEDULER, default_scheduler

__all__ = [
    "SEARCHERS",
    "SearchPlan",
    "check_multi_objective",
    "check_pairing",
    "create_searcher",
    "default_scheduler",
    "limit_concurrency",
    "scheduler_help",
    "searcher_help",
    "validate_searcher",
]

SEARCHERS = Registry("searcher")
SEARCHERS.add_lazy("grid", "tuning_service.raytune.searchers.grid:build")
SEARCHERS.add_lazy("random", "tuning_service.raytune.searchers.random:build")
SEARCHERS.add_lazy(
    "optuna", "tuning_service.raytune.searchers.optuna:build", aliases=("tpe", "bayesian", "bayes")
)
SEARCHERS.add_lazy("hyperopt", "tuning_service.raytune.searchers.hyperopt:build", aliases=("hyperopt-tpe",))
SEARCHERS.add_lazy("cmaes", "tuning_service.raytune.searchers.cmaes:build", aliases=("cma", "cma-es"))
SEARCHERS.add_lazy("qmc", "tuning_service.raytune.searchers.qmc:build", aliases=("sobol", "halton"))
# PyTorch is a download of hundreds of MB: only for those who choose the GP.
SEARCHERS.add_lazy(
    "gp",
    "tuning_service.raytune.searchers.gp:build",
    aliases=("gaussian", "gpsampler"),
    needs=Extra("gp", ("torch",)),
)
SEARCHERS.add_lazy(
    "bohb", "tuning_service.raytune.searchers.bohb:build", needs=Extra("bohb", ("hpbandster", "ConfigSpace"))
)
SEARCHERS.add_lazy(
    "nsga2", "tuning_service.raytune.searchers.nsga2:build", aliases=("nsga-ii", "nsgaii", "nsga")
)
SEARCHERS.add_lazy(
    "motpe", "tuning_service.raytune.searchers.motpe:build", aliases=("mo-tpe", "multi-objective-tpe")
)

# How a searcher meets a sweep of several objectives: these rank every objective (their builders
# take ``objectives`` and ``constraints``), these never look at any; the rest optimise one metric.
MULTI_OBJECTIVE = frozenset({"nsga2", "motpe"})
OBJECTIVE_AGNOSTIC = frozenset({"grid", "random"})
# Single-objective searchers whose Optuna sampler takes constraints (their builders take both too).
CONSTRAINED = frozenset({"optuna", "gp"})


# Set by the engine, never by users: the seed, and the configs to evaluate first (warm start).
_RESERVED = ("seed", "points_to_evaluate", "max_concurrent", "objectives", "constraints")


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


def check_pairing(searcher: str, scheduler: str) -> None:
    """Refuse a searcher and scheduler that only work with each other, each with a stranger."""
    wanted = PAIRED_SCHEDULER.get(searcher)
    if wanted is not None and scheduler != wanted:
        raise InputError(
            f"searcher {searcher!r} runs only with scheduler {wanted!r} (its model learns from that "
            f"scheduler's rungs), got scheduler {scheduler!r}; pass --scheduler {wanted} or leave it out"
        )
    partners = [s for s, paired in PAIRED_SCHEDULER.items() if paired == scheduler]
    if partners and searcher not in partners:
        raise InputError(
            f"scheduler {scheduler!r} runs only with searcher {partners[0]!r}, got searcher {searcher!r}; "
            f"use --searcher {partners[0]}, or --scheduler hyperband with {searcher!r}"
        )


def check_multi_objective(searcher: str, objectives: Sequence[Any]) -> None:
    """Refuse a searcher that optimises one metric for a sweep of several objectives."""
    if len(objectives) > 1 and searcher not in MULTI_OBJECTIVE | OBJECTIVE_AGNOSTIC:
        raise InputError(
            f"searcher {searcher!r} optimises one metric and cannot search {len(objectives)} objectives "
            f"({', '.join(map(str, objectives))}); use --searcher {' or '.join(sorted(MULTI_OBJECTIVE))} "
            f"(or {' or '.join(sorted(OBJECTIVE_AGNOSTIC))})"
        )


def searcher_help() -> str:
    """`run --help`'s line for --searcher: every name, and the install extra of those that need one."""
    return "One of: " + ", ".join(SEARCHERS.describe(name) for name in SEARCHERS.names()) + "."


def scheduler_help() -> str:
    """`run --help`'s line for --scheduler, with the searcher each paired one needs."""
    from tuning_service.raytune.schedulers import SCHEDULERS

    paired = {scheduler: searcher for searcher, scheduler in PAIRED_SCHEDULER.items()}
    names = [f"{n} (only with --searcher {paired[n]})" if n in paired else n for n in SCHEDULERS.names()]
    defaults = "; ".join(f"{s} with --searcher {n}" for n, s in PAIRED_SCHEDULER.items())
    return f"One of: {', '.join(names)}; the budget unit is the epoch [default: {DEFAULT_SCHEDULER}; {defaults}]."


def validate_searcher(name: str, space: Space, options: Mapping[str, Any]) -> None:
    """Check the name, the options, the extra installed and (for grid) the space, without importing Ray."""
    SEARCHERS.check(name)
    check_options("searcher", name, SEARCHERS[name], options, reserved=_RESERVED)
    SEARCHERS.check_installed(name)
    if name == "grid":
        space.grid_points(points=options.get("points"))  # raises for a range it cannot enumerate


def create_searcher(
    name: str,
    space: Space,
    *,
    seed: int,
    points_to_evaluate: Sequence[Mapping[str, Any]] = (),
    max_concurrent: int | None = None,
    objectives: Sequence[Any] = (),
    constraints: Sequence[Any] = (),
    **options: Any,
) -> SearchPlan:
    """Build the searcher registered under ``name`` (unknown names and options refused).

    ``points_to_evaluate`` run first, before the searcher proposes its own; points the
    space no longer accepts are dropped with a log line (see `points.usable_points`).
    ``max_concurrent`` caps running trials: Tune's own cap ignores variant generators.
    ``objectives`` and ``constraints`` (`objectives.Objective`, `objectives.Constraint`) go to
    the searchers that rank several objectives, and to those whose sampler takes constraints.
    """
    from tuning_service.raytune.searchers.points import usable_points

    build = SEARCHERS[name]
    check_options("searcher", name, build, options, reserved=_RESERVED)
    points = usable_points(space, points_to_evaluate)
    if name in MULTI_OBJECTIVE | CONSTRAINED:
        options = {**options, "objectives": tuple(objectives), "constraints": tuple(constraints)}
    plan: SearchPlan = build(
        space, seed=seed, points_to_evaluate=points, max_concurrent=max_concurrent, **options
    )
    return plan
