"""Scheduler registry: a name -> a Ray Tune trial scheduler whose budget unit is the epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuning_service.registry import Registry, check_options

__all__ = ["SCHEDULERS", "checkpoint_frequency", "create_scheduler", "validate_scheduler"]

SCHEDULERS = Registry("scheduler")
SCHEDULERS.add_lazy("fifo", "tuning_service.schedulers.fifo:build", aliases=("none",))
SCHEDULERS.add_lazy("asha", "tuning_service.schedulers.asha:build")
SCHEDULERS.add_lazy("hyperband", "tuning_service.schedulers.hyperband:build")
SCHEDULERS.add_lazy("median", "tuning_service.schedulers.median:build", aliases=("median_stopping",))
# Only with the bohb searcher (see searchers.PAIRED_SCHEDULER); its extra is the searcher's.
SCHEDULERS.add_lazy(
    "bohb", "tuning_service.schedulers.hyperband:build_for_bohb", aliases=("hyperband-for-bohb",)
)

# Schedulers that pause trials and resume them later from a checkpoint: these need one
# every epoch. The others only stop trials, so checkpoints serve retries and `resume`.
PAUSES_TRIALS = frozenset({"hyperband", "bohb"})
CHECKPOINT_EVERY = 5

# Every scheduler counts time in epochs: one Tune step of our trainable is one epoch.
TIME_ATTR = "training_iteration"
_RESERVED = ("max_t",)


def validate_scheduler(name: str, options: Mapping[str, Any]) -> None:
    """Check the name and options without importing Ray."""
    SCHEDULERS.check(name)
    check_options("scheduler", name, SCHEDULERS[name], options, reserved=_RESERVED)


def checkpoint_frequency(name: str, requested: int | None) -> int:
    """Epochs between checkpoints: as requested, else by what the scheduler needs.

    A checkpoint costs a trial little but the driver much (a copy and bookkeeping per
    trial per save); a trial retried or resumed at most repeats CHECKPOINT_EVERY - 1 epochs.
    """
    if requested is not None:
        return requested
    return 1 if name in PAUSES_TRIALS else CHECKPOINT_EVERY


def create_scheduler(name: str, *, max_t: int, **options: Any) -> Any:
    """Build the scheduler registered under ``name``; ``max_t`` is the epoch budget per trial."""
    build = SCHEDULERS[name]
    check_options("scheduler", name, build, options, reserved=_RESERVED)
    return build(max_t=max_t, **options)
