"""FIFO: every trial runs to its epoch budget; no early stopping."""

from __future__ import annotations

from typing import Any


def build(*, max_t: int) -> Any:
    """Ray's FIFOScheduler."""
    from tuning_service.raytune.schedulers.live import FIFO

    return FIFO()
