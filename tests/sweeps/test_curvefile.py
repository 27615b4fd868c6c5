"""curves.npz: the report's columns of a finished sweep, the same figure data as trials.json, never stale."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from test_report import _made_up, _trial

from tuning_service.core import curvefile
from tuning_service.core.results import TRIALS_JSON, write_outputs
from tuning_service.sweeps.report import curves, load


def _sweep(dir_, sweep_id: str, start: float):
    trials = [
        _trial(0, "completed", [0.5, 0.7, 0.9], start),
        _trial(1, "stopped early", [0.2], start + 0.5),
        _trial(2, "diverged", [0.3, None], start + 1.0),
        _trial(3, "errored", [], start + 2.0),
    ]
    result = replace(_made_up(dir_, trials), sweep_id=sweep_id)
    dir_.mkdir(parents=True)
    write_outputs(result)
    return result


def _same(a, b) -> None:
    assert [c.trial_id for c in a] == [c.trial_id for c in b]
    for x, y in zip(a, b, strict=True):
        assert (x.status, x.config, x.value, x.epochs) == (y.status, y.config, y.value, y.epochs)
        assert [None if v is None or math.isnan(v) else v for v in x.metric] == [
            None if v is None or math.isnan(v) else v for v in y.metric
        ]
        assert list(x.ends) == list(y.ends) and list(x.durations) == list(y.durations)


def test_the_columns_give_the_figures_what_trials_json_gives(tmp_path):
    result = _sweep(tmp_path / "s1", "s1", 100.0)
    assert (tmp_path / "s1" / curvefile.CURVES_NPZ).is_file()
    read, data = load([tmp_path / "s1"])
    assert read.trials == [replace(t, history=[]) for t in result.leaderboard()]
    _same(data, curves(result))
    # The diverged epoch has no value; the errored trial has no epochs; ends count from the first start.
    by_id = {c.trial_id: c for c in data}
    assert math.isnan(by_id["t2"].metric[1]) and by_id["t3"].epochs == []
    assert by_id["t0"].ends == [1.0, 2.0, 3.0]


def test_a_job_report_pools_the_sweeps_on_one_clock(tmp_path):
    first = _sweep(tmp_path / "a", "a", 100.0)
    second = _sweep(tmp_path / "b", "b", 200.0)
    merged, data = load([tmp_path / "a", tmp_path / "b"])
    assert [c.trial_id for c in data] == [t.trial_id for t in merged.trials]
    assert [c.trial_id for c in data][:2] == [f"a/{t.trial_id}" for t in first.leaderboard()[:2]]
    assert {c.trial_id: c.ends for c in data}["b/t0"] == [101.0, 102.0, 103.0]
    assert len(data) == len(first.trials) + len(second.trials)


def test_a_trials_json_changed_since_is_read_instead_of_stale_columns(tmp_path):
    _sweep(tmp_path / "s1", "s1", 100.0)
    path = tmp_path / "s1" / TRIALS_JSON
    rows = json.loads(path.read_text())
    rows[0]["status"] = "errored"  # edited by hand after the sweep
    path.write_text(json.dumps(rows))
    read, data = load([tmp_path / "s1"])
    assert read.trials[0].status == "errored" and data[0].status == "errored"


def test_a_damaged_columns_file_falls_back_to_trials_json(tmp_path, caplog):
    result = _sweep(tmp_path / "s1", "s1", 100.0)
    (tmp_path / "s1" / curvefile.CURVES_NPZ).write_bytes(b"not a zip file")
    _, data = load([tmp_path / "s1"])
    _same(data, curves(result))
    assert "curves.npz is unreadable" in caplog.text
