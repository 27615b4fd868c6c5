"""The job API: the errors a job raises (`InputError`) of `tuning_service.core.errors`."""

from __future__ import annotations

from tuning_service.core.errors import (
    InputError,
    NotRecordedError,
    SweepError,
    SweepStopped,
    TuningServiceError,
)

__all__ = [
    "InputError",
    "NotRecordedError",
    "SweepError",
    "SweepStopped",
    "TuningServiceError",
]
