"""Hyperband: synchronous brackets that pause trials and resume the best from checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.raytune.schedulers import TIME_ATTR


def _builder(ray_class: str, doc: str) -> Callable[..., Any]:
    """One builder (and option schema) for Ray's Hyperband and its BOHB variant (as made safe
    to resume in `brackets.py`)."""

    def build(
        *,
        max_t: int,
        reduction_factor: Annotated[float, AtLeast(1, strict=True)] = 3,
        stop_last_trials: bool = True,
    ) -> Any:
        from tuning_service.raytune.schedulers import brackets

        return getattr(brackets, ray_class)(
            time_attr=TIME_ATTR,
            max_t=max_t,
            reduction_factor=reduction_factor,
            stop_last_trials=stop_last_trials,
        )

    build.__doc__ = doc
    return build


build = _builder(
    "HyperBandScheduler", "Ray's HyperBandScheduler; paused trials resume from their saved epoch."
)
# Hyperband whose every rung result also goes to the bohb searcher's model (its partner only).
build_for_bohb = _builder(
    "HyperBandForBOHB",
    "Ray's HyperBandForBOHB: Hyperband, reporting each rung's results to the bohb searcher.",
)
