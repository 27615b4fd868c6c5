"""One stress-test writer process: epoch upserts straight into the store, no Ray.

python stress_writer.py URL SWEEP WRITER WRITES START_AT SHARED
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from tuning_service.store import open_store


def value(writer: int, epoch: int) -> float:
    """A made-up metric the test can recompute."""
    return ((writer * 31 + epoch * 7) % 101) / 100


def main(url: str, sweep: str, writer: int, writes: int, go: Path, shared: int) -> None:
    store = open_store(url)  # the first writers to get here create the schema, the others wait
    # Every writer records the sweep too: one row, whoever comes first or last.
    store.create_sweep(
        sweep,
        job="stress",
        job_ref="stress",
        metric="m",
        mode="max",
        searcher="random",
        scheduler="fifo",
        seed=0,
        space={},
        spec={},
        versions={},
    )
    go.with_name(f"{go.name}.{writer}").touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:  # all writers start together
        time.sleep(0.002)
    for epoch in range(1, writes + 1):
        store.record_epoch(
            sweep, f"w{writer}", epoch, mode="max", value=value(writer, epoch), metrics={"writer": writer}
        )
    # Every writer also writes the same keys, each in its own order and with its own values:
    # upserts under contention, one row each (the last write wins), and the trial's summary
    # (best value, best epoch, epochs) must match the rows whichever write commits last.
    order = list(range(1, shared + 1))
    random.Random(writer).shuffle(order)
    for epoch in order:
        store.record_epoch(
            sweep, "shared", epoch, mode="max", value=value(writer, epoch + 1000), metrics={"writer": writer}
        )
    store.close()


if __name__ == "__main__":
    url, sweep, writer, writes, go, shared = sys.argv[1:7]
    main(url, sweep, int(writer), int(writes), Path(go), int(shared))
