"""Population Based Training on the shared local Ray: a trial takes over a better trial's weights and
optimizer state, trains on with perturbed hyperparameters, and the store, lineage.json, `results`
and the report say whom it copied, when, and what changed."""

from __future__ import annotations

import json

import pytest

from tuning_service.core.space import Float
from tuning_service.core.spec import SweepSpec
from tuning_service.store import open_store
from tuning_service.sweeps.runner import run_sweep
from tuning_service.testing import tiny_job

pytestmark = pytest.mark.integration

SLOW, FAST = 1e-5, 0.05


@pytest.fixture(scope="module")
def pbt_sweep(ray_local, tmp_path_factory):
    """Two trials, one that barely learns (learning rate 1e-5) and one that learns fast; at epoch 2
    both pause (synch), and the slow one copies the fast one and trains one more epoch."""
    storage = tmp_path_factory.mktemp("pbt") / "results"
    job = tiny_job({"learning_rate": Float(SLOW, 0.1, log=True, grid=(SLOW, FAST))}, max_epochs=3)
    spec = SweepSpec(
        job="tiny",
        searcher="grid",
        scheduler="pbt",
        max_epochs=3,
        storage=str(storage),
        scheduler_options={
            "perturbation_interval": 2,
            "quantile_fraction": 0.5,
            "resample_probability": 0.0,
            "synch": True,
        },
    )
    result = run_sweep(spec, job=job)
    with open_store(None, storage=storage) as store:
        exploits = store.exploits(result.sweep_id)
        trials = {t.trial_id: t for t in store.trials([result.sweep_id])}
        epochs = {t: {e.epoch: e.metrics for e in store.epochs(result.sweep_id, t)} for t in trials}
    return result, exploits, trials, epochs, storage


def test_the_worse_trial_copies_the_better_ones_weights(pbt_sweep):
    result, exploits, trials, epochs, _ = pbt_sweep
    assert len(result.trials) == 2 and all(t.epochs == 3 for t in result.trials)
    (exploit,) = exploits
    slow = next(t for t in result.trials if t.config["learning_rate"] != FAST)
    fast = next(t for t in result.trials if t.config["learning_rate"] == FAST)
    assert (exploit.trial_id, exploit.donor_id) == (slow.trial_id, fast.trial_id)
    assert (exploit.epoch, exploit.donor_epoch) == (2, 2)
    own = epochs[slow.trial_id][2]["loss"]  # the slow trial's own last epoch before the copy
    donor = epochs[fast.trial_id][2]["loss"]
    after = epochs[slow.trial_id][3]["loss"]  # its first epoch from the copied state
    fresh = epochs[fast.trial_id][1]["loss"]  # what one epoch from initial weights reaches at this rate
    assert own - donor > 0.5, (own, donor, after)  # the two had learned very differently
    # It trains on from the donor's state, not its own: its loss goes on from the donor's, lower
    # than one epoch from (nearly) initial weights could bring it, and far from its own.
    assert after < donor and after < fresh, (own, donor, after, fresh)
    assert abs(after - donor) < 0.5 * abs(after - own), (own, donor, after)
    assert exploit.value < exploit.donor_value


def test_the_copying_trials_learning_rate_is_the_donors_perturbed(pbt_sweep):
    result, exploits, trials, _, _ = pbt_sweep
    (exploit,) = exploits
    change = exploit.changes["learning_rate"]
    assert change["old"] == SLOW and change["donor"] == FAST
    assert change["new"] in (pytest.approx(FAST * 1.2), pytest.approx(FAST * 0.8))
    # The recorded config of the trial is the one it ended with.
    assert trials[exploit.trial_id].config["learning_rate"] == change["new"]
    summary = next(t for t in result.trials if t.trial_id == exploit.trial_id)
    assert summary.config["learning_rate"] == change["new"]


def test_lineage_is_in_the_sweeps_files_results_and_report(pbt_sweep, capsys):
    from tuning_service.cli import main

    result, exploits, _, _, storage = pbt_sweep
    lineage = json.loads((result.sweep_dir / "lineage.json").read_text())
    assert [(e["trial_id"], e["donor_id"], e["epoch"]) for e in lineage] == [
        (x.trial_id, x.donor_id, x.epoch) for x in exploits
    ]
    assert main(["results", "--sweep", result.sweep_id, "--storage", str(storage), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lineage"] == lineage
    assert main(["results", "--sweep", result.sweep_id, "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "lineage" in out and f"learning_rate {exploits[0].changes['learning_rate']['old']:.4g} ->" in out
    assert main(["report", result.sweep_id, "--storage", str(storage)]) == 0
    page = (result.sweep_dir / "report.html").read_text()
    assert "<h2>lineage</h2>" in page and 'id="fig-lineage"' in page
    assert f'<td class="">{exploits[0].donor_id}</td>' in page
