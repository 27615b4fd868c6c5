"""ASHA: asynchronous successive halving; stops the worst trials at each rung."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.raytune.schedulers import TIME_ATTR


def build(
    *,
    max_t: int,
    grace_period: Annotated[int, AtLeast(1)] = 1,
    reduction_factor: Annotated[float, AtLeast(1, strict=True)] = 3,
    brackets: Annotated[int, AtLeast(1)] = 1,
) -> Any:
    """Ray's ASHAScheduler with rungs at grace_period * reduction_factor**k epochs."""
    from tuning_service.raytune.schedulers.live import ASHA

    return ASHA(
        time_attr=TIME_ATTR,
        max_t=max_t,
        grace_period=min(grace_period, max_t),
        reduction_factor=reduction_factor,
        brackets=brackets,
    )
