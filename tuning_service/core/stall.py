"""How long a sweep may go without a trial running before it is stopped (`raytune.stallguard`).

600 s on the embedded Ray, whose CPUs and GPUs are the machine's and were checked against the
trials' needs before the sweep started; on a cluster, where trials may wait for nodes that an
autoscaler is still adding, only where ``$TUNING_SERVICE_STALL_S`` asks for it. 0 turns it off.
"""

from __future__ import annotations

from tuning_service.core.envvars import seconds

STALL_ENV = "TUNING_SERVICE_STALL_S"
DEFAULT_STALL_S = 600.0


def stall_seconds(embedded: bool) -> float:
    """The wait, in seconds (0: for ever); InputError naming ``$TUNING_SERVICE_STALL_S`` for a bad value."""
    return float(seconds(STALL_ENV, DEFAULT_STALL_S if embedded else 0.0, zero=True))
