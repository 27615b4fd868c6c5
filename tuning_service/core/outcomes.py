"""How a trial ended, decided once: its status, the line explaining it, and what an error was.

The runner's summary, the live progress view and the results store all ask these
functions, so a trial never reads "completed" in one place and "stopped early" in another.
No Ray or TensorFlow imports: the store and the CLI use this module too.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from typing import Any

from tuning_service.core.results import COMPLETED, DIVERGED, ERRORED, INFEASIBLE, STOPPED

# Keys the trainable adds to every epoch's result (tuning_service.raytune.trainable).
EPOCH = "epoch"
TRAIN_TIME = "train_time_s"
DIVERGED_KEY = "diverged"
EARLY_STOPPED_KEY = "early_stopped"
ENDED_AT = "ended_at"
# The trial raised (a bad configuration, out of memory, ...): the message, already classified.
ERROR_KEY = "error"
# A result the trainable repeated for a trial that had finished before the driver died
# (see `resume`): it trains nothing and its epoch is already recorded.
REPLAYED_KEY = "replayed"
# The sweep's constraints the trial's model breaks (``params=250000 breaks params<=200000``).
INFEASIBLE_KEY = "infeasible"


def is_measured(result: Mapping[str, Any]) -> bool:
    """Whether a result's metric is a real measurement (not a diverged, failed or replayed step)."""
    return not (result.get(DIVERGED_KEY) or result.get(ERROR_KEY) or result.get(REPLAYED_KEY))


def epoch_cap(config: Mapping[str, Any], max_epochs: int) -> int:
    """A trial's own epoch budget: the sweep's, or less when its config sets ``epochs``."""
    return min(max_epochs, int(config.get("epochs") or max_epochs))


def trial_status(
    last: Mapping[str, Any], max_epochs: int, config: Mapping[str, Any] | None = None, *, error: bool = False
) -> str:
    """The status of a finished trial from its last result (``error``: Ray reported a failure)."""
    replayed = last.get(REPLAYED_KEY)
    if isinstance(replayed, str):  # a trial that had finished before its sweep was resumed
        return replayed
    if error or last.get(ERROR_KEY):
        return ERRORED
    if last.get(INFEASIBLE_KEY):
        return INFEASIBLE
    if last.get(DIVERGED_KEY):
        return DIVERGED
    epochs = int(last.get("training_iteration") or 0)
    if epochs >= epoch_cap(config or {}, max_epochs) and not last.get(EARLY_STOPPED_KEY):
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
        return str(last.get(ERROR_KEY) or "raised an error")
    if status == INFEASIBLE:
        return f"not trained after epoch {epoch}: {last.get(INFEASIBLE_KEY)}"
    return None


def dropped_message(epochs: int) -> str:
    """Why the store keeps a trial as dropped: Ray Tune's final results do not hold it."""
    if not epochs:
        return "dropped: the sweep ended before this trial reported an epoch; it is not in Ray Tune's results"
    return (
        "dropped: not in Ray Tune's results (it ran after the snapshot the sweep was resumed from, and "
        f"another trial took its place); its {epochs} recorded epoch{'s' * (epochs != 1)} are kept"
    )


# "OSError: ...", "ray.exceptions.ActorDiedError: ...": the line naming the exception.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b:")
# Words in an error that say what kind of failure it was, checked in this order.
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "out of memory",
        ("MemoryError", "ResourceExhaustedError", "OOM when allocating", "OutOfMemoryError", "out of memory"),
    ),
    ("disk full", ("No space left on device", f"[Errno {errno.ENOSPC}]")),
    ("worker died", ("ActorDiedError", "RayActorError", "WorkerCrashedError", "NodeDiedError", "actor died")),
)


def classify_error(text: str) -> str:
    """One line for an error: its last ``SomeError: message`` line (else its last line),
    prefixed by its kind when we recognise it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    line = (named or lines or ["raised an error (no message recorded)"])[-1]
    for kind, words in _KINDS:
        if any(word in text for word in words) and not line.startswith(kind):
            return f"{kind}: {line}"[:2000]
    return line[:2000]


def describe_exception(exc: BaseException) -> str:
    """`classify_error` for an exception raised inside a trial."""
    message = str(exc).strip().splitlines()
    head = f"{type(exc).__name__}: {message[-1]}" if message else type(exc).__name__
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full: {head}"[:2000]
    return classify_error(head)
