"""Every dashboard page and figure on SQLite and PostgreSQL, served in-process over a filled database."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import yaml
from dashdb import FINISHED_ID, OTHER_JOB_ID, RUNNING_ID


def _page(client, path: str) -> str:
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200, (path, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _json(client, path: str) -> dict:
    response = client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 200, (path, response.text[:300])
    return response.json()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_overview_lists_every_sweep_with_its_outcomes_and_progress(client):
    page = _page(client, "/")
    text = _text(page)
    for sweep_id in (FINISHED_ID, RUNNING_ID, OTHER_JOB_ID):
        assert f'href="/sweeps/{sweep_id}"' in page
    # Newest first; the finished sweep's outcomes by kind; the running one's progress bar.
    assert page.index(OTHER_JOB_ID) < page.index(RUNNING_ID) < page.index(FINISHED_ID)
    assert "6 /6 3 completed 1 stopped early 1 diverged 1 errored" in text
    assert "0 /4 2 running" in text and "<progress" in page
    assert "0.9000" in text and "random / asha" in text
    # Its live part alone, for the page script.
    part = _page(client, "/?part=sweeps")
    assert "<html" not in part and FINISHED_ID in part


def test_a_sweep_page_has_its_summary_leaderboard_and_every_figure(client):
    page = _page(client, f"/sweeps/{FINISHED_ID}")
    text = _text(page)
    assert "best val_accuracy (max) 0.9000 (trial t0)" in text
    board = _text(_page(client, f"/sweeps/{FINISHED_ID}?part=leaderboard"))
    ranks = [board.index(f" {t} ") for t in ("t0", "t1", "t5", "t2")]
    assert ranks == sorted(ranks), board  # ranked best first, unranked after
    assert board.index(" t2 ") < board.index(" t3 ") and board.index(" t2 ") < board.index(" t4 ")
    for name in ("curves", "best_so_far", "parallel", "importance", "stops", "slots"):
        assert f'data-src="/api/sweeps/{FINISHED_ID}/figures/{name}"' in page
    # Nothing is loaded from anywhere else: the page script and stylesheet are the package's own.
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "/static/dashboard.js" in page and client.get("/static/dashboard.js").status_code == 200


def test_the_sweep_figures_hold_what_was_recorded(client):
    base = f"/api/sweeps/{FINISHED_ID}/figures"
    curves = _json(client, f"{base}/curves")
    by_trial = {s["name"]: s for s in curves["series"]}
    assert set(by_trial) == {"t0", "t1", "t2", "t3", "t4", "t5"}
    assert by_trial["t0"]["points"] == [[1, 0.5], [2, 0.7], [3, 0.9]]
    assert by_trial["t3"]["status"] == "diverged" and by_trial["t3"]["points"][-1] == [2, None]
    assert "learning_rate=0.1" in by_trial["t0"]["info"] and "activation=relu" in by_trial["t0"]["info"]

    best = _json(client, f"{base}/best_so_far")
    spent = best["panels"][1]["points"]
    assert [(p[0], p[1]) for p in spent] == [(1, 0.5), (2, 0.7), (3, 0.9)]  # t0's epochs came first

    stops = _json(client, f"{base}/stops")
    counts = {s["name"]: dict(zip(stops["categories"], s["values"], strict=True)) for s in stops["series"]}
    assert counts == {"stopped early": {1: 1, 2: 0}, "diverged": {1: 0, 2: 1}, "errored": {1: 1, 2: 0}}

    parallel = _json(client, f"{base}/parallel")
    assert [a["name"] for a in parallel["axes"]] == ["learning_rate", "activation", "val_accuracy"]
    assert parallel["axes"][0]["log"] is True and parallel["axes"][1]["labels"] == ["relu", "tanh"]
    assert len(parallel["lines"]) == 4  # the ranked trials: completed and stopped early

    slots = _json(client, f"{base}/slots")
    assert max(p[1] for p in slots["panels"][0]["points"]) == 6 and slots["panels"][0]["points"][-1][1] == 0


def test_the_state_changes_when_an_epoch_is_recorded(own_client, filled_url):
    from tuning_service.store import open_store

    client = own_client
    before = _json(client, f"/api/state?sweep={RUNNING_ID}")
    assert before["running"] is True
    assert _json(client, f"/api/state?sweep={FINISHED_ID}")["running"] is False
    with open_store(filled_url) as store:
        store.record_epoch(RUNNING_ID, "r0", 2, mode="max", value=0.6, metrics={"val_accuracy": 0.6})
    after = _json(client, f"/api/state?sweep={RUNNING_ID}")
    assert after["fingerprint"] != before["fingerprint"]
    assert [
        p[0]
        for p in next(
            s
            for s in _json(client, f"/api/sweeps/{RUNNING_ID}/figures/curves")["series"]
            if s["name"] == "r0"
        )["points"]
    ] == [1, 2]


def test_the_job_page_shows_each_nightly_run_and_what_changed(client):
    page = _page(client, "/jobs/digits")
    text = _text(page)
    assert "nightly-digits: val_accuracy 0.9000: improved vs previous run 0.8500 (+0.0500)" in text
    assert "learning_rate 0.1000 → 0.0100" in text.replace("&rarr;", "→")
    assert f'href="/sweeps/{FINISHED_ID}"' in page and OTHER_JOB_ID not in page  # churn is another job
    history = _json(client, "/api/jobs/digits/history")
    (series,) = history["series"]
    assert [p[1] for p in series["points"]] == [0.9]  # each sweep's best ranked trial: none runs yet


def test_the_schedules_page_shows_last_runs_and_the_lock_held(client):
    text = _text(_page(client, "/schedules"))
    assert "nightly-digits digits 2026-03-03 09:00:00 UTC running" in text
    assert "locks held" in text and " held " in text and "stale" not in text


def test_compare_puts_sweeps_side_by_side(client):
    page = _page(client, f"/compare?sweep={FINISHED_ID}&sweep={OTHER_JOB_ID}")
    text = _text(page)
    assert "best 0.9000 0.7500" in text
    assert "trials 6 (3 completed, 1 stopped early, 1 diverged, 1 errored) 1 (1 completed)" in text
    chart = _json(client, f"/api/compare?sweep={FINISHED_ID}&sweep={OTHER_JOB_ID}")
    assert [s["name"] for s in chart["series"]] == [FINISHED_ID, OTHER_JOB_ID]
    assert "<select" in _page(client, "/compare")  # the picker, with nothing chosen yet


def test_downloads_are_the_export_records_and_the_report(client):
    response = client.get(f"/sweeps/{FINISHED_ID}/export.json")
    assert 'filename="' in response.headers["content-disposition"]
    (record,) = json.loads(response.text)["configs"]
    assert (record["trial_id"], record["value"], record["config"]) == (
        "t0",
        0.9,
        {"learning_rate": 0.1, "activation": "relu"},
    )
    rows = list(csv.DictReader(io.StringIO(client.get(f"/sweeps/{FINISHED_ID}/export.csv?top=3").text)))
    assert [r["trial_id"] for r in rows] == ["t0", "t1", "t5"] and rows[0]["config.activation"] == "relu"
    job = yaml.safe_load(client.get("/jobs/digits/export.yaml?top=2").text)
    assert [(c["sweep_id"], c["trial_id"]) for c in job["configs"]] == [
        (FINISHED_ID, "t0"),
        (FINISHED_ID, "t1"),
    ]


def test_unknown_things_and_bad_parameters_get_one_clear_answer(client):
    missing = client.get("/sweeps/nope", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "unknown sweep &#39;nope&#39;" in missing.text
    assert client.get("/api/sweeps/nope/figures/curves").json()["error"].startswith("unknown sweep 'nope'")
    assert client.get("/jobs/nojob").status_code == 404
    bad = client.get(f"/api/sweeps/{FINISHED_ID}/figures/pie")
    assert bad.status_code == 404 and "choose one of: curves, best_so_far" in bad.json()["error"]
    bad_page = client.get("/?page=x", headers={"Accept": "application/json"})
    assert (
        bad_page.status_code == 400
        and bad_page.json()["error"] == "page must be a whole number >= 1, got 'x'"
    )
    assert client.get(f"/sweeps/{FINISHED_ID}/export.xml").status_code == 404
    bad_top = client.get(f"/sweeps/{FINISHED_ID}/export.json?top=0", headers={"Accept": "application/json"})
    assert (
        bad_top.status_code == 400 and bad_top.json()["error"] == "top must be a whole number >= 1, got '0'"
    )
    no_best = client.get(f"/sweeps/{RUNNING_ID}/export.json", headers={"Accept": "application/json"})
    assert no_best.status_code == 404 and "has no finished trial" in no_best.json()["error"]


def test_every_answer_forbids_loading_anything_from_elsewhere(client):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.slow
def test_importance_and_the_report_download_are_the_reports_own(client, shared_url):
    """On one backend: both run the report's code (Optuna's importance and Matplotlib: seconds)."""
    if not shared_url.startswith("sqlite"):
        pytest.skip("computed in Python from the same rows: one backend shows it")
    found = _json(client, f"/api/sweeps/{FINISHED_ID}/figures/importance")
    assert sorted(found["categories"]) == ["activation", "learning_rate"]
    assert abs(sum(found["series"][0]["values"]) - 1.0) < 0.01
    report = client.get(f"/sweeps/{FINISHED_ID}/report.html")
    assert report.status_code == 200 and 'id="fig-learning_curves"' in report.text
    assert (
        "3 completed" in report.text
        and "style-src 'unsafe-inline'" in report.headers["content-security-policy"]
    )


@pytest.mark.slow
def test_a_report_download_is_kept_until_its_sweep_records_more(filled_url):
    """Drawing the report costs seconds at scale: it is kept, and drawn again once the sweep moves."""
    from starlette.testclient import TestClient

    from tuning_service.dashboard import create_app, open_read_only
    from tuning_service.store import open_store

    if not filled_url.startswith("sqlite"):
        pytest.skip("the cache is the dashboard's own, the same on either database")
    path = f"/sweeps/{RUNNING_ID}/report.html"
    reader = open_read_only(filled_url, "unused")
    with TestClient(create_app(reader)) as client:
        first = client.get(path).text
        assert "1 completed" not in first and "r0" not in _text(first)  # nothing ended yet
        assert client.get(path).text == first
        assert [k[:2] for k in client.app.state.cache] == [("report.html", RUNNING_ID)]
        with open_store(filled_url) as store:
            store.finish_trial(RUNNING_ID, "r0", "completed")
        again = client.get(path).text
        assert "1 completed" in again and " r0 " in _text(again)
    reader.close()


SCHEDULE = """\
defaults:
  time_zone: Europe/Paris
  database: postgresql://tuner:hunter2@127.0.0.1:1/tuning
sweeps:
  nightly-digits:
    job: digits
    num_samples: 4
    cron: "0 0 1 1 *"
"""


def test_the_schedules_page_shows_each_scheduled_sweeps_next_run(shared_url, tmp_path):
    """From --schedule files, read at each view: the next run in UTC, the last recorded run beside it."""
    from datetime import UTC, datetime

    from starlette.testclient import TestClient

    from tuning_service.dashboard import create_app, open_read_only

    if not shared_url.startswith("sqlite"):
        pytest.skip("read from the file, the same on either database")
    schedule = tmp_path / "sweeps.yaml"
    schedule.write_text(SCHEDULE)
    now = datetime.now(UTC)
    # Midnight of New Year's Day in Paris is 23:00 UTC on the 31st (winter time).
    year = now.year if now < datetime(now.year, 12, 31, 23, tzinfo=UTC) else now.year + 1
    store = open_read_only(shared_url, "unused")
    with TestClient(create_app(store, schedule_files=[schedule])) as client:
        page = _page(client, "/schedules")
        text = _text(page)
        assert (
            f"nightly-digits digits 0 0 1 1 * (Europe/Paris) {year}-12-31 23:00:00 UTC local "
            "running 2026-03-03 09:00:00 UTC sweeps.yaml"
        ) in text, text
        assert "hunter2" not in page
        schedule.write_text(SCHEDULE.replace('"0 0 1 1 *"', '"61 * * * *"'))  # edited, now wrong
        text = _text(_page(client, "/schedules"))
        assert "sweeps.yaml:8: sweeps.nightly-digits.cron:" in text and "(Europe/Paris)" not in text, text
    store.close()
