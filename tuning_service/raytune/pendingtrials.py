"""Tune's cap on pending trials, raised to the trials a sweep runs at once.

Ray Tune keeps at most one trial pending (made, waiting for its actor) for any searcher but its
variant generator, unless a `ConcurrencyLimiter` wraps the searcher
(`tune_controller._get_max_pending_trials`). With reused actors, that ran a sweep of short
trials in one worker: the one pending trial's new actor was still starting when a running trial
ended, so the trial took the ended trial's actor and Tune dropped the new one. The default sweep
(`tuning-service run digits`, Optuna) trained all its trials in one worker process on two cores
in two of four runs (benchmarks/RESULTS.md, "What the changes did").

`raise_pending_cap` sets Tune's own variable for this cap, ``TUNE_MAX_PENDING_TRIALS_PG``, to
the trials the sweep can run at once (`concurrent_trials`), for the sweep's driver only: every
slot gets an actor, and a model-based searcher has at most that many suggestions waiting beside
the running trials. A value the user set is kept (checked: Tune would fail on it mid-sweep).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tuning_service.core.errors import InputError

log = logging.getLogger(__name__)

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"


def concurrent_trials(
    resources: dict[str, float],
    cpus_per_trial: float,
    gpus_per_trial: float,
    num_samples: int,
    max_concurrent: int | None,
) -> int:
    """How many trials fit at once in the cluster's ``resources`` (Ray's totals), at least 1."""
    caps = [num_samples, max_concurrent or num_samples]
    for per_trial, total in (
        (cpus_per_trial, resources.get("CPU", 0.0)),
        (gpus_per_trial, resources.get("GPU", 0.0)),
    ):
        if per_trial > 0:
            caps.append(int(total / per_trial + 1e-9))  # 4 trials of 0.25 GPU fit on one
    return max(1, min(caps))


def user_pending_cap() -> str | None:
    """The cap the user set in ``TUNE_MAX_PENDING_TRIALS_PG`` (None: unset or empty), checked as
    Tune reads it: "auto" or what ``int`` takes, here above 0."""
    text = os.environ.get(PENDING_ENV, "")
    if not text.strip():
        return None
    try:
        valid = text == "auto" or int(text) > 0
    except ValueError:
        valid = False
    if not valid:
        raise InputError(f"{PENDING_ENV} must be a whole number > 0 or 'auto', got {text!r}; fix or unset it")
    return text


def raise_pending_cap(search_alg: Any, slots: int) -> None:
    """Let Tune keep ``slots`` trials pending for ``search_alg`` (None: Tune's variant generator,
    whose own cap is 200 or more), unless the user set the cap. The caller restores the variable
    after the sweep (`env_restored`): Tune reads it as the run starts."""
    from ray.tune.search import BasicVariantGenerator

    chosen = user_pending_cap()
    if chosen is not None:
        log.debug("Tune keeps the pending trials %s sets: %s", PENDING_ENV, chosen)
        return
    if search_alg is None or isinstance(search_alg, BasicVariantGenerator):
        os.environ.pop(PENDING_ENV, None)  # set empty, Tune would fail on it: its own cap
        return
    os.environ[PENDING_ENV] = str(slots)
    log.debug("Tune may keep %d trials pending, one per trial the sweep runs at once", slots)
