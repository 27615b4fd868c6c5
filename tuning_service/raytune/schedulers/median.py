"""Median stopping rule: stop a trial whose running mean falls below the median of others."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.raytune.schedulers import TIME_ATTR


def build(
    *,
    max_t: int,
    grace_period: Annotated[int, AtLeast(1)] = 1,
    min_samples_required: Annotated[int, AtLeast(1)] = 3,
) -> Any:
    """Ray's MedianStoppingRule, judged in epochs."""
    from tuning_service.raytune.schedulers.live import MedianStopping

    return MedianStopping(
        time_attr=TIME_ATTR, grace_period=min(grace_period, max_t), min_samples_required=min_samples_required
    )
