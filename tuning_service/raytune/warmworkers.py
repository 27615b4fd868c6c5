"""Warm workers: the embedded Ray starts its trial workers, importing TensorFlow, as the driver connects.

Where the embedded Ray's workers are forked from a process that has imported TensorFlow
(`workerfork`, the default on Linux) they start warm anyway, when Tune asks for them; these are
the workers where they are not (``TUNING_SERVICE_WORKER_FORK=0``, other platforms by default).
`plain_trial_actors` serves both.

Without them, Ray starts a trial's worker process only when Tune asks for the trial's actor,
and the worker then imports Ray, Tune and TensorFlow (about 2.3 s on 2 cores) after Ray's
start and Tune's. Ray can instead start one worker per CPU when the driver connects
(``prestart_worker_first_driver``) and have each import a module first
(``preload_python_modules``: `workerimports`), so those imports run while the driver sets up
Tune. Three things stood between Tune's actors and those workers:

- Ray hands an actor only a worker started with the actor's runtime environment, and Tune
  gives every trial actor one (``{"env_vars": {"PL_DISABLE_FORK": "1", ...}}``, for PyTorch
  Lightning and the variables Tune forwards from the driver). `plain_trial_actors` drops it
  while a sweep runs on an embedded Ray: its workers inherit the driver's environment through
  the raylet this process started, so the forwarded variables reach them all the same.
- Ray stops a worker that has been idle for a second once no CPU is free for it, and Tune's
  placement groups took the CPUs just before Tune asked for the actors (`system_config`). The
  embedded Ray's trials now reserve their CPUs in the driver (`fixedresources`); a Tune
  without the name that module replaces still makes the groups.
- Ray starts one worker per CPU, so workers are warmed only where the sweep runs as many
  trials at once (`worth_warming`); otherwise a worker would import TensorFlow for nothing.

On 2 cores this brings the second trial's first epoch sooner, not the first one's: Ray answers
the first driver's connection only once the workers it starts for it have registered, and the
two import at once (`python -m benchmarks.startup`; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuning_service.raytune.pendingtrials import concurrent_trials
from tuning_service.raytune.tunepatch import replaced

log = logging.getLogger(__name__)

PRELOAD = "tuning_service.raytune.workerimports"
# How long Ray keeps an idle worker it has no free CPU for: long enough for Tune's start.
IDLE_WORKER_KEPT_MS = 60_000


def trial_slots(
    cpus: int, cpus_per_trial: float, gpus_per_trial: float, trials: int, max_concurrent: int | None
) -> int:
    """How many Keras trials a sweep on ``cpus`` CPUs runs at once, at most (0 for GPU trials,
    whose count depends on the GPUs Ray finds)."""
    if gpus_per_trial > 0:
        return 0
    return concurrent_trials({"CPU": float(cpus)}, cpus_per_trial, 0.0, trials, max_concurrent)


def worth_warming(slots: int, cpus: int) -> bool:
    """Whether each of the ``cpus`` workers Ray would start ahead gets a trial."""
    return slots >= cpus > 0


def system_config() -> dict[str, Any]:
    """Ray's settings for a node whose Python workers start, warm, when the first driver connects."""
    return {
        "prestart_worker_first_driver": True,
        "preload_python_modules": [PRELOAD],
        # Ray stops a worker idle for over a second (its default) when no free CPU is left for
        # it, and Tune's placement groups (where `fixedresources` cannot replace them) take the
        # CPUs just before Tune asks for the actors: in some starts the warm workers were
        # stopped then, and the actors got new ones.
        "idle_worker_killing_time_threshold_ms": IDLE_WORKER_KEPT_MS,
    }


@contextmanager
def plain_trial_actors() -> Iterator[None]:
    """Tune's trial actors without a runtime environment while this context is open (see above).

    Reaches into Tune's private actor class cache; a Tune without it keeps its own actors
    (one debug line), which then get workers of their own as before.
    """
    try:
        import ray
        from ray.tune.execution.class_cache import _ActorClassCache
    except ImportError as exc:
        log.debug("trial actors keep Tune's runtime environment: %s", exc)
        yield
        return
    tunes_get = _ActorClassCache.get

    def get(cache: Any, trainable_cls: type) -> Any:
        known = getattr(cache, "_cache", None)
        if not isinstance(known, dict):
            return tunes_get(cache, trainable_cls)
        if trainable_cls not in known:
            known[trainable_cls] = ray.remote(trainable_cls)
        return known[trainable_cls]

    with replaced(_ActorClassCache, "get", get):
        yield
