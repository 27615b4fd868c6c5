"""A recorded multi-objective sweep's Pareto front: from the store, in results, compare and export."""

from __future__ import annotations

import json

import pytest
from storedbs import record_multi_objective_sweep as _record

from tuning_service.cli import main
from tuning_service.sweeps.front import sweep_front


def test_the_front_holds_the_feasible_non_dominated_trials_best_first(store):
    _record(store, "20250101-000000-aaaaaa")
    front = sweep_front(store, store.find_sweep("20250101"))
    assert [c.trial_id for c in front.members] == ["big", "mid", "small"]
    assert front.members[0].values == {"val_accuracy": 0.97, "params": 90000.0}  # at the best epoch
    assert front.picked.trial_id == "big"
    picked = sweep_front(store, store.find_sweep("20250101"), "val_accuracy:max where params<=50000").picked
    assert picked.trial_id == "mid"


def _cli(db_url, capsys, *args) -> tuple[int, str, str]:
    code = main([*args, "--db", db_url])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_writes_the_front_or_the_picked_member(store, db_url, capsys, tmp_path):
    _record(store, "20250101-000000-aaaaaa")
    code, out, _ = _cli(db_url, capsys, "export", "--sweep", "20250101")
    records = json.loads(out)["configs"]
    assert code == 0 and [r["trial_id"] for r in records] == ["big", "mid", "small"]
    assert records[1]["objectives"] == {"val_accuracy": 0.93, "params": 20000.0} and records[0]["picked"]
    code, out, _ = _cli(
        db_url, capsys, "export", "--sweep", "20250101", "--pick", "params:min", "--format", "csv"
    )
    assert code == 0 and out.count("\n") == 2 and ",small," in out and "objectives.params" in out
    code, out, _ = _cli(db_url, capsys, "results", "--sweep", "20250101")
    assert code == 0 and "Pareto front: 3 trials over val_accuracy:max, params:min" in out
    code, out, _ = _cli(db_url, capsys, "compare", "20250101", "20250101")
    assert code == 0 and "3 trials; best by val_accuracy:max" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--pick", "params:min"],
            "error: --pick chooses among a sweep's Pareto front: give the sweep with --sweep ID",
        ),
        (
            ["--sweep", "20250101", "--pick", "val_accuracy:max where params<10"],
            "error: --pick 'val_accuracy:max where params<10': no member of sweep 20250101-000000-aaaaaa's Pareto front meets it",
        ),
        (
            ["--sweep", "20250101", "--pick", "val_loss:min"],
            "error: --pick 'val_loss:min': 'val_loss' is not an objective of the sweep (val_accuracy, params)",
        ),
        (
            ["--sweep", "20250202"],
            "error: sweep 20250202-000000-bbbbbb optimised one metric (val_accuracy); a Pareto front needs a sweep run with two or more --objective",
        ),
    ],
)
def test_export_refuses_in_one_line(store, db_url, capsys, args, message):
    _record(store, "20250101-000000-aaaaaa")
    _record(store, "20250202-000000-bbbbbb", objectives=[])
    code, out, err = _cli(db_url, capsys, "export", *args)
    assert code == 2 and err == message + "\n" and out == ""
