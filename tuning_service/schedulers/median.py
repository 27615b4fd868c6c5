"""Median stopping rule: stop a trial whose running mean falls below the median of others."""

from __future__ import annotations

from typing import Any

from tuning_service.schedulers import TIME_ATTR


def build(*, max_t: int, grace_period: int = 1, min_samples_required: int = 3) -> Any:
    """Ray's MedianStoppingRule, judged in epochs."""
    from tuning_service.schedulers.live import MedianStopping

    return MedianStopping(
        time_attr=TIME_ATTR, grace_period=min(grace_period, max_t), min_samples_required=min_samples_required
    )
