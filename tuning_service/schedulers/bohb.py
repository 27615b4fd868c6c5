"""Hyperband for BOHB: Hyperband's brackets, reporting each rung's results to the bohb searcher."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.registry import AtLeast
from tuning_service.schedulers import TIME_ATTR


def build(
    *,
    max_t: int,
    reduction_factor: Annotated[float, AtLeast(1, strict=True)] = 3,
    stop_last_trials: bool = True,
) -> Any:
    """Ray's HyperBandForBOHB; paused trials resume from their saved epoch, as with hyperband."""
    from ray.tune.schedulers import HyperBandForBOHB

    return HyperBandForBOHB(
        time_attr=TIME_ATTR, max_t=max_t, reduction_factor=reduction_factor, stop_last_trials=stop_last_trials
    )
