"""An embedded Ray's trials reserve their CPUs and GPUs in the driver, without a placement group each.

Tune reserves each trial's resources with a placement group of its own: a call to Ray's GCS
to create it as the trial is added, Ray's two-phase reservation on the node, and another call
to remove it as the trial ends. With actors reused, most of those groups are never used: the
trial takes over a finished trial's actor, and its group is removed again. At 256 short trials
that was about 3 ms of the driver's step per trial, waiting on the GCS, while a worker waited
on the driver (`python -m benchmarks.overhead --trials 256 --profile`).

On a Ray this process started for its sweep, the node is the sweep's alone: Tune's own
`FixedResourceManager` then counts the node's CPUs and GPUs in the driver, and Ray places each
trial's actor by the same numbers (``num_cpus``, ``num_gpus``). A cluster keeps Tune's groups:
nodes join and leave it, and other drivers share it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tuning_service.raytune.tunepatch import replaced

log = logging.getLogger(__name__)


@contextmanager
def resources_counted_in_driver() -> Iterator[None]:
    """Tune's controllers made while this context is open count trial resources in the driver.

    A Tune without the names this replaces keeps its placement groups (one debug line).
    """
    try:
        from ray.air.execution.resources.fixed import FixedResourceManager
        from ray.tune.execution import tune_controller

        tune_controller.PlacementGroupResourceManager  # noqa: B018 - the name this replaces
    except (ImportError, AttributeError) as exc:
        log.debug("trials keep Tune's placement groups: %s", exc)
        yield
        return
    with replaced(tune_controller, "PlacementGroupResourceManager", FixedResourceManager):
        yield
