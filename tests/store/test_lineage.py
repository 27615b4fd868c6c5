"""PBT's lineage in the store (SQLite and PostgreSQL): exploits recorded in order, replays are upserts."""

from __future__ import annotations

from storefakes import add_sweep


def _exploit(number: int, trial: str, donor: str, epoch: int, new_lr: float) -> dict:
    return {
        "number": number,
        "trial_id": trial,
        "epoch": epoch,
        "value": 0.5,
        "donor_id": donor,
        "donor_epoch": epoch,
        "donor_value": float("nan"),  # not a number: stored as null, like every metric
        "changes": {"learning_rate": {"old": 1e-4, "donor": 0.01, "new": new_lr}},
    }


def test_exploits_are_recorded_in_order_and_replays_replace_them(store):
    add_sweep(store, "s1", trials={"t1": ("running", [0.5]), "t2": ("running", [0.9])}, finish=None)
    store.record_exploit("s1", _exploit(2, "t1", "t2", 4, 0.008))
    store.record_exploit("s1", _exploit(1, "t1", "t2", 2, 0.012))
    # A resumed scheduler numbers from its snapshot: its exploit 2 replaces the one the killed driver made.
    store.record_exploit("s1", _exploit(2, "t2", "t1", 4, 0.0096))
    rows = store.exploits("s1")
    assert [(r.number, r.trial_id, r.donor_id, r.epoch) for r in rows] == [
        (1, "t1", "t2", 2),
        (2, "t2", "t1", 4),
    ]
    assert rows[1].changes["learning_rate"] == {"old": 1e-4, "donor": 0.01, "new": 0.0096}
    assert rows[0].value == 0.5 and rows[0].donor_value is None
    assert store.exploits("other") == []
