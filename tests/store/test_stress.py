"""Many processes writing one database at once lose nothing and duplicate nothing (no Ray)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from stress_writer import value

from tuning_service.store import open_store
from tuning_service.store.migrate import current_revision, head_revision

WRITER = Path(__file__).with_name("stress_writer.py")
WRITERS, WRITES, SHARED = 8, 200, 25


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_eight_writers_times_two_hundred_writes_lose_nothing(db_url, tmp_path):
    """On a new, empty database: the writers also race to create the schema and the sweep."""
    go = tmp_path / "go"
    procs = [
        _spawn([str(WRITER), db_url, "stress", str(w), str(WRITES), str(go), str(SHARED)])
        for w in range(WRITERS)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*"))) < WRITERS and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    go.touch()  # every writer is connected: now they all write at once
    started = time.monotonic()
    outcomes = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    elapsed = time.monotonic() - started
    assert all(code == 0 for code, _ in outcomes), [err[-2000:] for code, err in outcomes if code]

    with open_store(db_url) as store, store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert [s.sweep_id for s in store.sweeps()] == ["stress"]
        epochs = store.epochs("stress")
        trials = {t.trial_id: t for t in store.trials(["stress"])}
    assert len(epochs) == WRITERS * WRITES + SHARED
    for w in range(WRITERS):
        mine = [e for e in epochs if e.trial_id == f"w{w}"]
        assert [e.epoch for e in mine] == list(range(1, WRITES + 1))
        assert all(e.value == value(w, e.epoch) and e.metrics == {"writer": w} for e in mine)
        best = max(range(1, WRITES + 1), key=lambda n: (value(w, n), -n))
        assert (trials[f"w{w}"].epochs, trials[f"w{w}"].best_epoch) == (WRITES, best)
        assert trials[f"w{w}"].value == value(w, best)
    rows = [e for e in epochs if e.trial_id == "shared"]
    assert [e.epoch for e in rows] == list(range(1, SHARED + 1))
    assert all(e.value == value(e.metrics["writer"], e.epoch + 1000) for e in rows)  # one write, whole
    best = max(rows, key=lambda e: (e.value, -e.epoch))
    shared = trials["shared"]
    assert (shared.epochs, shared.best_epoch, shared.value) == (SHARED, best.epoch, best.value), (
        "the trial's summary does not match its epoch rows"
    )
    rate = (WRITERS * (WRITES + SHARED)) / elapsed
    print(f"{WRITERS} writers x {WRITES + SHARED} writes in {elapsed:.1f}s ({rate:.0f} writes/s)")
