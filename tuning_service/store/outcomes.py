"""A finished trial's outcome and its one-line explanation, from its last epoch's result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuning_service.results import COMPLETED, DIVERGED, ERRORED, STOPPED

# Keys the trainable adds to every epoch's result (tuning_service.trainable, which imports Ray).
DIVERGED_KEY = "diverged"
EARLY_STOPPED_KEY = "early_stopped"


def trial_status(last: Mapping[str, Any], max_epochs: int) -> str:
    """The rule `runner._summarize` applies, for trials the recorder sees finish."""
    if last.get(DIVERGED_KEY):
        return DIVERGED
    if int(last.get("training_iteration") or 0) >= max_epochs and not last.get(EARLY_STOPPED_KEY):
        return COMPLETED
    return STOPPED


def outcome_message(status: str, last: Mapping[str, Any], max_epochs: int) -> str | None:
    """Why a trial ended where it did; None for a trial that ran its full budget."""
    epoch = int(last.get("training_iteration") or 0)
    if status == DIVERGED:
        return f"diverged at epoch {epoch}: the loss or a metric became NaN or infinite"
    if status == STOPPED and last.get(EARLY_STOPPED_KEY):
        return f"stopped at epoch {epoch} of {max_epochs}: no improvement within the job's patience"
    if status == STOPPED:
        return f"stopped at epoch {epoch} of {max_epochs} by the scheduler"
    if status == ERRORED:
        return "raised an error"
    return None
