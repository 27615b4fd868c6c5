"""tiny_job whose trials wait for each other, so a sweep on two 1-CPU nodes must use both."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any

from tuning_service.models import build_mlp
from tuning_service.testing import tiny_job

WAIT_S = 90.0


def build_model(meeting_point: Path, config: dict[str, Any], input_spec: Any) -> Any:
    """Build only once a trial also runs on another node (or after WAIT_S).

    Tune reuses a finished trial's actor for the next trial; with trials this short,
    a cold worker node would otherwise never get one. Waiting here keeps the first
    trial busy until the second has started elsewhere, as longer trials would.
    """
    import ray

    meeting_point.mkdir(parents=True, exist_ok=True)
    (meeting_point / ray.get_runtime_context().get_node_id()).touch()
    deadline = time.monotonic() + WAIT_S
    while len(list(meeting_point.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return build_mlp(config, input_spec)


# The directory is read where the sweep starts and travels inside the job to every node.
JOB = dataclasses.replace(
    tiny_job(max_epochs=1),
    build_model=functools.partial(build_model, Path(os.environ.get("SPREAD_JOB_DIR", "meeting-point"))),
)
