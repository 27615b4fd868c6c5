"""Multi-objective searchers and MO-ASHA, driven directly with made-up results (no Ray cluster).

The searchers must hand Optuna every objective with its direction and the constraints'
margins; MO-ASHA must stop a trial by its rule (`rung_decision`) on hand-built rungs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from tuning_service.core.errors import InputError
from tuning_service.core.objectives import check_constraints, check_objectives
from tuning_service.core.space import Float, Int, Space
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.schedulers import create_scheduler, validate_scheduler
from tuning_service.raytune.schedulers.moasha import MOASHA, milestones, rung_decision
from tuning_service.raytune.searchers import check_multi_objective, create_searcher

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "units": Int(8, 64)})
OBJ = check_objectives(["val_accuracy:max", "params:min"], "val_accuracy")


@pytest.mark.parametrize("name", ["nsga2", "motpe"])
def test_searchers_tell_optuna_every_objective_and_the_constraint_margins(name):
    plan = create_searcher(name, SPACE, seed=0, objectives=OBJ, constraints=check_constraints(["params<=40"]))
    searcher = plan.search_alg
    # Tune hands the searcher the sweep's one metric: the objectives must survive it.
    assert searcher.set_search_properties("val_accuracy", "max", plan.param_space)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        params = config["units"]
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": 0.5 + 0.01 * i, "params": float(params)})
    # A trial that raised reports no value for params: told as failed, not left running.
    searcher.suggest("t-bad")
    searcher.on_trial_complete("t-bad", {"val_accuracy": -1e9}, error=True)
    study = searcher._ot_study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.get_trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and [t.state.name for t in trials].count("FAIL") == 1
    for t in done:
        margin = t.constraints["params<=40"] if hasattr(t, "constraints") else t.user_attrs["constraints"][0]
        assert margin == pytest.approx(t.values[1] - 40)


@pytest.mark.parametrize("name", ["optuna", "gp"])
def test_constrained_samplers_of_one_objective_are_told_the_margins(name):
    """`--constraint` without several objectives: TPE and the GP sampler still get it."""
    plan = create_searcher(name, SPACE, seed=0, constraints=check_constraints(["params<=40"]))
    searcher = plan.search_alg
    assert searcher.set_search_properties("val_accuracy", "max", plan.param_space)
    for i in range(3):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(
            f"t{i}", {"val_accuracy": 0.5 + 0.01 * i, "params": float(config["units"])}
        )
    study = searcher._ot_study
    assert [d.name for d in study.directions] == ["MAXIMIZE"]
    done = study.get_trials()
    assert [t.state.name for t in done] == ["COMPLETE"] * 3
    for t in done:
        margin = t.constraints["params<=40"] if hasattr(t, "constraints") else t.user_attrs["constraints"][0]
        assert margin == pytest.approx(t.params["units"] - 40)
    # Without constraints: Ray's plain OptunaSearch, as before.
    assert type(create_searcher(name, SPACE, seed=0).search_alg).__name__ == "OptunaSearch"


def test_single_objective_searchers_are_refused_for_several_objectives():
    check_multi_objective("random", OBJ)  # objective-agnostic: allowed
    check_multi_objective("optuna", OBJ[:1])  # one objective: any searcher
    with pytest.raises(
        InputError,
        match=r"^searcher 'hyperopt' optimises one metric and cannot search 2 objectives \(val_accuracy:max, params:min\); use --searcher motpe or nsga2 \(or grid or random\)$",
    ):
        check_multi_objective("hyperopt", OBJ)


@pytest.mark.parametrize("name", ["hyperband", "median", "pbt"])
def test_schedulers_that_rank_one_metric_are_refused(name):
    with pytest.raises(
        InputError, match=rf"^scheduler '{name}' ranks trials by one metric and cannot rank 2 objectives"
    ):
        validate_scheduler(name, {}, objectives=OBJ)


def test_asha_becomes_mo_asha_with_several_objectives_and_fifo_stays():
    assert isinstance(create_scheduler("asha", max_t=9, objectives=OBJ, grace_period=1), MOASHA)
    assert not isinstance(create_scheduler("asha", max_t=9, objectives=OBJ[:1]), MOASHA)
    assert type(create_scheduler("fifo", max_t=9, objectives=OBJ)).__name__ == "FIFO"
    with pytest.raises(
        InputError,
        match=r"^scheduler 'asha': unknown option 'brackets' \(accepted: grace_period, reduction_factor\)",
    ):
        validate_scheduler("asha", {"brackets": 2}, objectives=OBJ)


def test_rungs_sit_where_rays_asha_puts_them():
    assert milestones(27, 1, 3) == [27, 9, 3, 1]
    assert milestones(3, 1, 3) == [3, 1]


# Minimised vectors: (-accuracy, params).
def test_the_first_trial_at_a_rung_continues():
    assert rung_decision([], (-0.5, 100.0), 3)


def test_a_dominated_trial_stops():
    assert not rung_decision([(-0.9, 10.0)], (-0.5, 100.0), 3)


def test_a_trial_on_the_first_front_with_the_widest_spread_continues():
    # Both non-dominated, both boundary points (infinite crowding): the tie goes to the newcomer.
    assert rung_decision([(-0.9, 100.0)], (-0.5, 10.0), 3)


def test_a_crowded_middle_point_of_the_front_stops_when_the_quota_is_full():
    rung = [(-0.9, 100.0), (-0.5, 10.0)]
    # On the first front but between the two boundary points: 2 rank ahead, quota ceil(3/3) = 1.
    assert not rung_decision(rung, (-0.7, 50.0), 3)
    # With reduction factor 1.5 the quota is 2: still 2 ahead, stops; factor 1.2: quota 3, continues.
    assert not rung_decision(rung, (-0.7, 50.0), 1.5)
    assert rung_decision(rung, (-0.7, 50.0), 1.2)


def test_a_second_front_trial_continues_only_within_the_quota():
    # A chain: each trial dominates the next, so each is alone on its front.
    rung = [(-0.9, 10.0), (-0.8, 20.0), (-0.6, 30.0), (-0.4, 40.0), (-0.3, 50.0)]
    # Second front (only the first trial dominates it): 1 ahead, quota ceil(6/3) = 2: continues.
    assert rung_decision(rung, (-0.85, 15.0), 3)
    # Third front: 2 ahead, quota 2: stops.
    assert not rung_decision(rung, (-0.7, 25.0), 3)
    # One trial recorded, quota ceil(2/3) = 1: any dominated newcomer stops.
    assert not rung_decision(rung[:1], (-0.85, 15.0), 3)


def _result(trial: str, epoch: int, acc: float, params: float, **extra):
    return SimpleNamespace(trial_id=trial), {
        "training_iteration": epoch,
        "val_accuracy": acc,
        "params": params,
        **extra,
    }


def test_mo_asha_stops_by_the_rule_at_its_rungs_and_decides_once_per_rung():
    scheduler = MOASHA(OBJ, max_t=9, grace_period=1, reduction_factor=3)
    decide = lambda t, e, a, p, **x: scheduler.on_trial_result(None, *_result(t, e, a, p, **x))  # noqa: E731
    assert decide("a", 1, 0.9, 10.0) == TrialScheduler.CONTINUE
    assert decide("b", 1, 0.5, 100.0) == TrialScheduler.STOP  # dominated by a
    assert decide("c", 1, 0.95, 200.0) == TrialScheduler.CONTINUE  # on the front
    assert decide("a", 2, 0.1, 1e9) == TrialScheduler.CONTINUE  # between rungs: nothing to decide
    assert decide("a", 3, 0.92, 10.0) == TrialScheduler.CONTINUE  # first at rung 3
    assert decide("c", 3, 0.91, 200.0) == TrialScheduler.STOP  # dominated by a at rung 3
    # An infeasible trial or one without every objective is never ranked: it ends by itself.
    assert decide("d", 1, 0.1, 1e6, infeasible="params=1e+06 breaks params<=1000") == TrialScheduler.CONTINUE
    assert [t for t, _ in scheduler.rungs[1]] == ["a", "b", "c"]
    assert scheduler.rungs[3] == [("a", (-0.92, 10.0)), ("c", (-0.91, 200.0))]
    assert not math.isnan(scheduler.rungs[1][0][1][0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--objective", "val_accuracy:max", "--objective", "size:min"],
            "unknown objective 'size'; choose one of:",
        ),
        (
            ["--objective", "val_accuracy:max", "--objective", "params:down"],
            "the direction must be max or min, got 'down'",
        ),
        (["--objective", "params:min", "--objective", "params:min"], "'params' is named twice"),
        (
            ["--searcher", "optuna", "--objective", "val_accuracy:max", "--objective", "params:min"],
            "searcher 'optuna' optimises one metric",
        ),
        (
            [
                "--searcher",
                "nsga2",
                "--scheduler",
                "median",
                "--objective",
                "val_accuracy:max",
                "--objective",
                "params:min",
            ],
            "scheduler 'median' ranks trials by one metric",
        ),
        (["--constraint", "params=<3"], "--constraint 'params=<3': write NAME OP NUMBER"),
        (
            ["--pick", "params:min"],
            "--pick 'params:min' chooses among a multi-objective sweep's Pareto front",
        ),
        (
            ["--searcher", "nsga2", "--objective", "val_accuracy:max", "--objective", "params:min"]
            + ["--pick", "val_accuracy:max where latency_ms<2"],
            "'latency_ms' is not an objective of the sweep (val_accuracy, params)",
        ),
    ],
)
def test_run_refuses_bad_objectives_in_one_line_with_exit_2(tmp_path, capsys, args, message):
    from tuning_service.cli import main

    storage = tmp_path / "results"
    code = main(["run", "digits", "--storage", str(storage), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not storage.exists()


def test_a_multi_objective_sweep_resumes_with_its_objectives_and_mo_ashas_rungs():
    """What `resume` reads back: the spec from its JSON record, the scheduler and searcher from
    Tune's pickled snapshot."""
    import dataclasses
    import pickle

    from tuning_service.sweeps.resume import spec_of

    spec = SweepSpec(
        searcher="nsga2", objectives=("val_accuracy:max", "params:min"), constraints=("params<=9",)
    )
    recorded = json.loads(json.dumps({k: v for k, v in dataclasses.asdict(spec).items() if k != "db"}))
    again = spec_of(SimpleNamespace(spec=recorded), db=None)
    assert again.objectives == spec.objectives and again.constraints == spec.constraints
    scheduler = MOASHA(OBJ, max_t=9, grace_period=1, reduction_factor=3)
    scheduler.on_trial_result(None, *_result("a", 1, 0.9, 10.0))
    restored = pickle.loads(pickle.dumps(scheduler))
    assert restored.rungs == scheduler.rungs
    assert restored.on_trial_result(None, *_result("b", 1, 0.5, 100.0)) == TrialScheduler.STOP
    plan = create_searcher(
        "nsga2", SPACE, seed=0, objectives=OBJ, constraints=check_constraints(["params<=9"])
    )
    plan.search_alg.set_search_properties("val_accuracy", "max", plan.param_space)
    plan.search_alg.suggest("t0")
    searcher = pickle.loads(pickle.dumps(plan.search_alg))
    searcher.on_trial_complete("t0", {"val_accuracy": 0.5, "params": 12.0})
    (trial,) = searcher._ot_study.get_trials()
    margins = (
        trial.constraints
        if hasattr(trial, "constraints")
        else {"params<=9": trial.user_attrs["constraints"][0]}
    )
    assert trial.values == [0.5, 12.0] and margins == {"params<=9": 3.0}


def test_best_config_holds_the_front_member_the_pick_rule_chooses(tmp_path):
    """`--pick`: the most accurate model under a size limit, not the most accurate one."""
    from tuning_service.core.results import SweepResult, TrialSummary, best_config_record

    def trial(trial_id: str, acc: float, params: float) -> TrialSummary:
        return TrialSummary(
            trial_id=trial_id, config={"units": int(params)}, status="completed", value=acc, best_epoch=2,
            epochs=2, train_time_s=1.0, objectives={"val_accuracy": acc, "params": params},
        )  # fmt: skip

    result = SweepResult(
        sweep_id="s", job="digits", metric="val_accuracy", mode="max", searcher="nsga2", scheduler="asha",
        seed=0, sweep_dir=tmp_path, wall_time_s=1.0, max_epochs=2,
        trials=[trial("big", 0.97, 90000), trial("mid", 0.93, 20000), trial("worse", 0.90, 30000)],
        objectives=["val_accuracy:max", "params:min"], pick="val_accuracy:max where params<=50000",
    )  # fmt: skip
    record = best_config_record(result)
    assert record["trial_id"] == "mid" and record["config"] == {"units": 20000}
    assert (
        record["pick"] == "val_accuracy:max where params<=50000" and record["objectives"]["params"] == 20000
    )
    assert result.best.trial_id == "big"  # the leaderboard still ranks by the first objective
    none_fits = dataclasses.replace(result, pick="val_accuracy:max where params<=1000")
    assert none_fits.chosen is None and best_config_record(none_fits) is None
