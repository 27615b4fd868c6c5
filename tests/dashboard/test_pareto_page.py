"""A multi-objective sweep's page: its Pareto front as a figure, a live table and a download."""

from __future__ import annotations

import json
import re

import pytest
from storedbs import record_multi_objective_sweep

MO_ID = "20250101-000000-aaaaaa"


@pytest.fixture
def mo_client(db_url):
    from starlette.testclient import TestClient

    from tuning_service.dashboard import create_app, open_read_only
    from tuning_service.store import open_store

    with open_store(db_url) as store:
        record_multi_objective_sweep(store, MO_ID)
        record_multi_objective_sweep(store, "20250202-000000-bbbbbb", objectives=[])
    reader = open_read_only(db_url, "unused")
    with TestClient(create_app(reader)) as client:
        yield client
    reader.close()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_sweep_page_shows_the_front_as_a_table_and_a_figure(mo_client):
    page = mo_client.get(f"/sweeps/{MO_ID}").text
    table = _text(mo_client.get(f"/sweeps/{MO_ID}?part=pareto").text)
    # Infeasible "huge" and dominated "worse" are not on it; best first by the first objective.
    assert table.strip() == (
        "# trial val_accuracy (max) params (min) status config "
        "1 big 0.9700 90000 completed units=16 2 mid 0.9300 20000 completed units=32 "
        "3 small 0.7000 2000 stopped early units=48"
    )
    assert 'data-part="pareto"' in page and table in _text(page)
    assert f'data-src="/api/sweeps/{MO_ID}/figures/pareto"' in page and "Pareto front (3 trials)" in _text(
        page
    )

    figure = mo_client.get(f"/api/sweeps/{MO_ID}/figures/pareto").json()
    assert (figure["x_label"], figure["y_label"]) == ("params (min)", "val_accuracy (max)")
    *trials, front = figure["series"]
    assert [s["name"] for s in trials] == ["worse"]  # the feasible trial off the front
    assert trials[0]["points"] == [[30000.0, 0.90]] and "units=64" in trials[0]["info"]
    # The front from the fewest parameters up, drawn as the staircase of what it dominates.
    assert [p[:2] for p in front["points"]] == [[2000.0, 0.70], [20000.0, 0.93], [90000.0, 0.97]]
    assert front["step"] == "hv" and "trial small" in front["points"][0][2]


def test_the_front_downloads_as_export_writes_it(mo_client):
    records = json.loads(mo_client.get(f"/sweeps/{MO_ID}/pareto.json").text)["configs"]
    assert [r["trial_id"] for r in records] == ["big", "mid", "small"]
    assert records[1]["objectives"] == {"val_accuracy": 0.93, "params": 20000.0}
    picked = mo_client.get(
        f"/sweeps/{MO_ID}/pareto.csv", params={"pick": "val_accuracy:max where params<=50000"}
    )
    assert picked.status_code == 200 and picked.text.count("\n") == 2 and ",mid," in picked.text


def test_a_sweep_of_one_objective_has_no_front(mo_client):
    page = mo_client.get("/sweeps/20250202-000000-bbbbbb").text
    assert "figures/pareto" not in page and 'data-part="pareto"' not in page
    assert mo_client.get("/api/sweeps/20250202-000000-bbbbbb/figures/pareto").status_code == 404
    answer = mo_client.get("/sweeps/20250202-000000-bbbbbb/pareto.json")
    assert answer.status_code == 404 and "a Pareto front needs a sweep run with two or more" in answer.text
