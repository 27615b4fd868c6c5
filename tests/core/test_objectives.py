"""Objectives, constraints and pick rules: parsed, checked with one-line errors, applied."""

from __future__ import annotations

import pytest

from tuning_service.core.errors import InputError
from tuning_service.core.objectives import (
    Candidate,
    check_constraints,
    check_objectives,
    pareto_set,
    parse_constraint,
    parse_pick,
    violations,
)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (
            ["val_accuracy:max", "size:min"],
            r"^--objective 'size:min': unknown objective 'size'; choose one of: latency_ms, loss, params, val_accuracy, val_loss$",
        ),
        (
            ["val_accuracy:max", "params:smallest"],
            r"^--objective 'params:smallest': the direction must be max or min, got 'smallest'$",
        ),
        (["val_accuracy"], r"^--objective 'val_accuracy': write NAME:max or NAME:min"),
        (
            ["val_accuracy:max", "val_accuracy:min"],
            r"^--objective: 'val_accuracy' is named twice; name each objective once$",
        ),
        (
            ["params:min", "val_accuracy:max"],
            r"^--objective 'params:min': the first objective is the sweep's metric and must be one the model reports",
        ),
    ],
)
def test_bad_objectives_are_refused_in_one_line(texts, message):
    with pytest.raises(InputError, match=message):
        check_objectives(texts, "val_accuracy")


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["params=<5"], r"^--constraint 'params=<5': write NAME OP NUMBER with OP one of <=, >=, <, >"),
        (["params<=lots"], r"^--constraint 'params<=lots': the bound must be a finite number, got 'lots'$"),
        (
            ["val_accuracy>=0.9"],
            r"^--constraint 'val_accuracy>=0.9': a constraint bounds a model cost \(latency_ms, params\)",
        ),
    ],
)
def test_bad_constraints_are_refused_in_one_line(texts, message):
    with pytest.raises(InputError, match=message):
        check_constraints(texts)


@pytest.mark.parametrize(
    ("text", "value", "holds", "margin"),
    [
        ("params<=100", 100, True, 0.0),
        ("params<=100", 150, False, 50.0),
        ("params<100", 100, False, 1e-7),  # a strict bound met exactly is a (tiny) violation
        ("latency_ms>=2", 1.5, False, 0.5),
        ("latency_ms>2", 3, True, -1.0),
    ],
)
def test_constraint_holds_and_margin(text, value, holds, margin):
    c = parse_constraint(text)
    assert c.holds(value) is holds
    assert c.margin(value) == pytest.approx(margin)


def test_violations_name_the_value_and_the_limit():
    assert violations({"params": 250000.0}, check_constraints(["params<=200000"])) == [
        "params=250000 breaks params<=200000"
    ]


OBJ = check_objectives(["val_accuracy:max", "params:min"], "val_accuracy")
TRIALS = [
    Candidate("a", {"val_accuracy": 0.9, "params": 5000}),
    Candidate("b", {"val_accuracy": 0.8, "params": 1000}),
    Candidate("c", {"val_accuracy": 0.7, "params": 2000}),  # dominated by b
    Candidate("d", {"val_accuracy": 0.95, "params": 90000}),
]


def test_pareto_set_is_best_first_by_the_first_objective():
    assert [c.trial_id for c in pareto_set(TRIALS, OBJ)] == ["d", "a", "b"]


def test_pick_rule_takes_the_best_under_a_limit():
    members = pareto_set(TRIALS, OBJ)
    assert parse_pick("val_accuracy:max", OBJ).choose(members).trial_id == "d"
    assert parse_pick("val_accuracy:max where params<=10000", OBJ).choose(members).trial_id == "a"
    assert parse_pick("params:min", OBJ).choose(members).trial_id == "b"
    assert parse_pick("val_accuracy:max where params<10", OBJ).choose(members) is None


def test_pick_names_only_the_sweeps_objectives():
    with pytest.raises(
        InputError,
        match=r"^--pick 'val_loss:min': 'val_loss' is not an objective of the sweep \(val_accuracy, params\)$",
    ):
        parse_pick("val_loss:min", OBJ)
