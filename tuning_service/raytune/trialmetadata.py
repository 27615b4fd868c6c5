"""Tune's run metadata of each trial, kept lean while a sweep runs.

Tune keeps, for every number a trial reports, its maximum, minimum, mean and last value, and
also its last 5 and last 10 values (for the "last-5-avg" and "last-10-avg" scopes of Tune's
`ExperimentAnalysis`). It writes all of it into every experiment snapshot as indented JSON, each
window a pickle in hexadecimal; the indentation keeps Python's JSON encoder off its C code.
The service never reads those scopes (its results store keeps every epoch), but encoding
them was most of a trial's share of the snapshot's CPU and of the snapshot's size, which
the driver writes and archives again and again (`python -m benchmarks.snapshot_cost`).

While a sweep runs, a new trial keeps no windows and its metadata is encoded without
indentation: what Tune restores is the same, less the two scopes. A trial restored from an
older snapshot keeps the windows it had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from tuning_service.raytune.tunepatch import replaced

log = logging.getLogger(__name__)


@contextmanager
def lean_run_metadata() -> Iterator[None]:
    """While open, new trials' run metadata keeps no last-n windows and encodes unindented;
    a Ray whose Tune keeps it elsewhere (its private names) gets Tune's, and the log says so."""
    try:
        from ray.tune.trainable.metadata import _TrainingRunMetadata
        from ray.tune.utils.serialization import TuneFunctionEncoder
    except ImportError as exc:
        log.debug("Tune's trial metadata is kept as Tune keeps it: %s", exc)
        yield
        return

    tunes_init = _TrainingRunMetadata.__init__

    def init(self: Any, n_steps: tuple[int, ...] = ()) -> None:
        tunes_init(self, n_steps)  # type: ignore[arg-type]  # Tune annotates a tuple of any length as tuple[int]

    def get_json_state(self: Any) -> str:
        if self._cached_json is None:
            state = {k: v for k, v in vars(self).items() if k != "_cached_json"}
            self._cached_json = json.dumps(state, cls=TuneFunctionEncoder)
        return str(self._cached_json)

    with ExitStack() as stack:
        stack.enter_context(replaced(_TrainingRunMetadata, "__init__", init))
        stack.enter_context(replaced(_TrainingRunMetadata, "get_json_state", get_json_state))
        yield
