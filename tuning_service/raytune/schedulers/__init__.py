"""Scheduler registry: a name -> a Ray Tune trial scheduler whose budget unit is the epoch."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuning_service.core.errors import InputError
from tuning_service.core.registry import Registry, check_options

if TYPE_CHECKING:
    from tuning_service.core.space import Space

__all__ = [
    "SCHEDULERS",
    "checkpoint_frequency",
    "checkpoints_kept",
    "create_scheduler",
    "validate_scheduler",
]

SCHEDULERS = Registry("scheduler")
SCHEDULERS.add_lazy("fifo", "tuning_service.raytune.schedulers.fifo:build", aliases=("none",))
SCHEDULERS.add_lazy("asha", "tuning_service.raytune.schedulers.asha:build")
SCHEDULERS.add_lazy("hyperband", "tuning_service.raytune.schedulers.hyperband:build")
SCHEDULERS.add_lazy("median", "tuning_service.raytune.schedulers.median:build", aliases=("median_stopping",))
SCHEDULERS.add_lazy("pbt", "tuning_service.raytune.schedulers.pbt:build", aliases=("population",))
# Only with the bohb searcher (see spec.PAIRED_SCHEDULER); its extra is the searcher's.
SCHEDULERS.add_lazy(
    "bohb", "tuning_service.raytune.schedulers.hyperband:build_for_bohb", aliases=("hyperband-for-bohb",)
)

# Multi-objective sweeps: the variant that ranks every objective in place of a scheduler the
# user chose (MO-ASHA for asha), and the schedulers that rank nothing (fifo). The others rank
# by one metric and are refused, never left to use the first objective alone.
MULTI_OBJECTIVE = Registry("scheduler")
MULTI_OBJECTIVE.add_lazy("asha", "tuning_service.raytune.schedulers.moasha:build")
OBJECTIVE_AGNOSTIC = frozenset({"fifo"})

# What a scheduler needs beyond its options, checked before Ray starts: the sweep's
# searcher, space and epoch budget (`check(*, searcher, space, max_t, **options)`).
CHECKS = Registry("scheduler")
CHECKS.add_lazy("pbt", "tuning_service.raytune.schedulers.pbt:check")

# Schedulers that pause trials and resume them later from a checkpoint: these need one
# every epoch. The others only stop trials, so checkpoints serve retries and `resume`.
PAUSES_TRIALS = frozenset({"hyperband", "bohb"})
CHECKPOINT_EVERY = 5
# Checkpoints kept per trial where other trials copy them (PBT): one a trial is about to
# restore from must outlive its owner's next few saves (Ray's PBT warns about fewer than 3).
KEPT_FOR_COPYING = {"pbt": 4}

# Every scheduler counts time in epochs: one Tune step of our trainable is one epoch.
TIME_ATTR = "training_iteration"
# Set by the engine, never by users.
_RESERVED = ("max_t", "space", "objectives")


def validate_scheduler(
    name: str,
    options: Mapping[str, Any],
    *,
    searcher: str | None = None,
    space: Space | None = None,
    max_t: int | None = None,
    checkpoint_frequency: int | None = None,
    objectives: Sequence[Any] = (),
) -> None:
    """Check the name and options, and what the scheduler needs of the sweep, without importing Ray.

    The sweep's ``searcher``, ``space``, ``max_t``, requested ``checkpoint_frequency`` and
    ``objectives`` are checked where given (a schedule file checks them once it knows the job).
    """
    SCHEDULERS.check(name)
    check_options("scheduler", name, _builder(name, objectives), options, reserved=_RESERVED)
    if name in CHECKS and space is not None:
        CHECKS[name](
            searcher=searcher,
            space=space,
            max_t=max_t,
            checkpoint_frequency=checkpoint_frequency,
            **options,
        )


def _builder(name: str, objectives: Sequence[Any]) -> Any:
    """The builder of ``name`` for a sweep of these objectives (refused when it cannot rank several)."""
    if len(objectives) <= 1 or name in OBJECTIVE_AGNOSTIC:
        return SCHEDULERS[name]
    if name not in MULTI_OBJECTIVE:
        raise InputError(
            f"scheduler {name!r} ranks trials by one metric and cannot rank {len(objectives)} objectives "
            f"({', '.join(map(str, objectives))}); use --scheduler {' or '.join(MULTI_OBJECTIVE.names())} "
            f"(non-dominated sorting) or {' or '.join(sorted(OBJECTIVE_AGNOSTIC))}"
        )
    return MULTI_OBJECTIVE[name]


def checkpoint_frequency(name: str, requested: int | None, options: Mapping[str, Any] | None = None) -> int:
    """Epochs between checkpoints: as requested, else by what the scheduler needs.

    A checkpoint costs a trial little but the driver much (a copy and bookkeeping per
    trial per save); a trial retried or resumed at most repeats CHECKPOINT_EVERY - 1 epochs.
    PBT checkpoints at every perturbation interval, where trials copy each other.
    """
    if requested is not None:
        return requested
    if name == "pbt":
        from tuning_service.raytune.schedulers.pbt import interval

        return interval(options or {})
    return 1 if name in PAUSES_TRIALS else CHECKPOINT_EVERY


def checkpoints_kept(name: str, default: int) -> int:
    """Checkpoints Tune keeps per trial: ``default``, or more where trials restore from others'."""
    return max(default, KEPT_FOR_COPYING.get(name, 0))


def create_scheduler(
    name: str, *, max_t: int, space: Space | None = None, objectives: Sequence[Any] = (), **options: Any
) -> Any:
    """Build the scheduler registered under ``name``; ``max_t`` is the epoch budget per trial,
    ``space`` the job's search space (for schedulers that change configs as they go), and
    ``objectives`` the sweep's (several: the variant that ranks them all, see MULTI_OBJECTIVE)."""
    build = _builder(name, objectives)
    check_options("scheduler", name, build, options, reserved=_RESERVED)
    context: dict[str, Any] = {"max_t": max_t}
    parameters = inspect.signature(build).parameters
    if "space" in parameters:
        context["space"] = space
    if "objectives" in parameters:
        context["objectives"] = tuple(objectives)
    return build(**context, **options)
