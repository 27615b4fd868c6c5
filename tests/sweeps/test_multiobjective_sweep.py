"""A real tiny multi-objective sweep (digits: accuracy vs parameter count, NSGA-II + MO-ASHA) end to end:
the front recorded and exported, infeasible trials kept off it, and MO-ASHA's stops replayed by its rule."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tuning_service.cli import main
from tuning_service.core.objectives import check_constraints, check_objectives, violations
from tuning_service.core.pareto import dominates
from tuning_service.core.results import INFEASIBLE, PARETO_JSON, STOPPED, best_config_record
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.recording import recorded_result
from tuning_service.raytune.schedulers.moasha import rung_decision
from tuning_service.store import open_store
from tuning_service.sweeps.front import sweep_front
from tuning_service.sweeps.report import load, write_report
from tuning_service.sweeps.runner import run_sweep

pytestmark = pytest.mark.integration

OBJECTIVES = ("val_accuracy:max", "params:min")
CONSTRAINT = "params<=60000"


def test_nsga2_with_asha_finds_a_front_exports_it_and_stops_trials_by_mo_ashas_rule(
    ray_local, storage, capsys
):
    spec = SweepSpec(
        job="digits",
        searcher="nsga2",
        scheduler="asha",
        num_samples=6,
        max_epochs=3,
        data_limit=200,
        seed=3,
        storage=str(storage),
        objectives=OBJECTIVES,
        constraints=(CONSTRAINT,),
    )
    result = run_sweep(spec)
    objectives = check_objectives(OBJECTIVES, "val_accuracy")
    constraints = check_constraints([CONSTRAINT])

    # Every trial reports its parameter count; those over the limit are infeasible, never on the front.
    assert all("params" in t.objectives for t in result.trials)
    for t in result.trials:
        assert (t.status == INFEASIBLE) == bool(violations(t.objectives, constraints)), t
    front = result.pareto()
    assert front and all(c.item.status != INFEASIBLE for c in front)
    vector = lambda values: tuple(o.minimised(values[o.name]) for o in objectives)  # noqa: E731
    ranked = [t for t in result.trials if t.status not in (INFEASIBLE,) and t.objectives]
    for member in front:
        assert not any(dominates(vector(t.objectives), vector(member.values)) for t in ranked)
    for t in ranked:
        if t.trial_id not in {c.trial_id for c in front}:
            assert any(dominates(vector(c.values), vector(t.objectives)) for c in front)
    # best_config.json: the first objective's best among feasible trials, a member of the front.
    best = json.loads((result.sweep_dir / "best_config.json").read_text())
    assert best["trial_id"] == front[0].trial_id
    written = json.loads((result.sweep_dir / PARETO_JSON).read_text())
    assert [m["trial_id"] for m in written["front"]] == [c.trial_id for c in front]

    # The store's front is the same, and export writes it with each member's objective values.
    with open_store(None, storage=str(storage)) as store:
        row = store.find_sweep(result.sweep_id)
        recorded = sweep_front(store, row)
        epochs = [e for e in store.epochs(result.sweep_id) if e.epoch == 1]
        statuses = {t.trial_id: (t.status, t.epochs) for t in store.trials([result.sweep_id])}
    assert [c.trial_id for c in recorded.members] == [c.trial_id for c in front]
    # Read back from the database (what a submitted sweep's caller reads), the sweep chooses the
    # same trial: the first objective's best, or the member a --pick rule picks.
    with open_store(None, storage=str(storage)) as store:
        again = recorded_result(store, row)
    assert best_config_record(again)["trial_id"] == best["trial_id"]
    mine = {t.trial_id: t.objectives for t in result.trials}
    assert sorted(mine) == sorted(t.trial_id for t in again.trials)
    for t in again.trials:
        assert t.objectives == pytest.approx(mine[t.trial_id]), t.trial_id
    smallest = min(front, key=lambda c: c.values["params"])
    rule = f"val_accuracy:max where params<={smallest.values['params']:g}"
    picked = replace(result, pick=rule).chosen
    assert picked is not None and picked.trial_id == replace(again, pick=rule).chosen.trial_id
    out = storage / "front.json"
    assert main(["export", "--sweep", result.sweep_id, "--storage", str(storage), "-o", str(out)]) == 0
    exported = json.loads(out.read_text())["configs"]
    assert [r["trial_id"] for r in exported] == [c.trial_id for c in front]
    assert all(set(r["objectives"]) == {"val_accuracy", "params"} for r in exported)

    # MO-ASHA (rungs at epochs 1 and 3): replaying its rule over the epoch-1 results in the order
    # the driver saw them must stop exactly the trials that stopped after one epoch.
    rung: list[tuple[float, ...]] = []
    stopped = set()
    for e in sorted(epochs, key=lambda e: e.recorded_at):
        if statuses[e.trial_id][0] == INFEASIBLE:
            continue  # ends by itself, never ranked
        v = vector(e.metrics)
        if not rung_decision(rung, v, 3):
            stopped.add(e.trial_id)
        rung.append(v)
    assert stopped, "MO-ASHA stopped no trial: the test's seed no longer exercises the rule"
    assert stopped == {t for t, (status, n) in statuses.items() if status == STOPPED and n == 1}

    # The report draws the front and lists it, read back from the sweep's folder.
    loaded, data = load([result.sweep_dir])
    assert [c.trial_id for c in loaded.pareto()] == [c.trial_id for c in front]
    page = write_report(loaded, None, storage / "report.html", data=data).read_text()
    assert 'id="fig-pareto_front"' in page and f"Pareto front: {len(front)} trials" in page
    capsys.readouterr()
