"""A sweep's objectives (``NAME:max``), constraints (``NAME<=BOUND``) and pick rules, parsed and checked.

Several objectives make a multi-objective sweep: its result is a Pareto front rather than
one best trial. The first objective is the sweep's metric (the one every leaderboard ranks
by); model costs the trainable measures itself (`COSTS`) may follow it. Constraints bound
model costs; a trial that violates one is recorded as infeasible and never exported as best.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.pareto import front

# Model costs measured by the trainable (see `modelcost`), reported with every epoch's result.
PARAMS, LATENCY_MS = "params", "latency_ms"
COSTS = (LATENCY_MS, PARAMS)
MODES = ("max", "min")
OPERATORS = ("<=", ">=", "<", ">")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Objective:
    """One objective: a reported metric or model cost, and whether bigger or smaller is better."""

    name: str
    mode: str

    def minimised(self, value: float) -> float:
        """``value`` as a quantity to minimise (Pareto logic minimises every coordinate)."""
        return -value if self.mode == "max" else value

    def __str__(self) -> str:
        return f"{self.name}:{self.mode}"


@dataclass(frozen=True)
class Constraint:
    """``name op bound``: a limit on one reported quantity."""

    name: str
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return {
            "<=": value <= self.bound,
            ">=": value >= self.bound,
            "<": value < self.bound,
            ">": value > self.bound,
        }[self.op]

    def margin(self, value: float) -> float:
        """How far ``value`` is out of bounds: <= 0 when it holds, > 0 when violated (Optuna's
        ``constraints_func`` convention; a strict bound met exactly counts as a small violation)."""
        gap = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if not self.holds(value) and gap <= 0:
            return 1e-9 * max(1.0, abs(self.bound))
        return gap

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


def parse_objective(text: str, flag: str = "--objective") -> Objective:
    """``val_accuracy:max`` -> Objective; one line naming the accepted form otherwise."""
    name, sep, mode = str(text).strip().partition(":")
    if not sep or not name.strip():
        raise InputError(f"{flag} {text!r}: write NAME:max or NAME:min, e.g. val_accuracy:max or params:min")
    if mode.strip() not in MODES:
        raise InputError(f"{flag} {text!r}: the direction must be max or min, got {mode.strip()!r}")
    return Objective(name.strip(), mode.strip())


def parse_constraint(text: str, flag: str = "--constraint") -> Constraint:
    """``params<=200000`` -> Constraint (operators <=, >=, <, >)."""
    match = _CONSTRAINT.match(str(text))
    if match is None:
        raise InputError(
            f"{flag} {text!r}: write NAME OP NUMBER with OP one of {', '.join(OPERATORS)}, e.g. params<=200000"
        )
    name, op, raw = match.groups()
    try:
        bound = float(raw)
    except ValueError:
        bound = math.nan
    if not math.isfinite(bound):
        raise InputError(f"{flag} {text!r}: the bound must be a finite number, got {raw!r}")
    return Constraint(name, op, bound)


def known_objectives(metric: str) -> list[str]:
    """What an objective may name for a job whose metric is ``metric``: the metric, the losses, the costs."""
    return sorted({metric, "loss", "val_loss", *COSTS})


def check_objectives(texts: Sequence[str], metric: str, flag: str = "--objective") -> tuple[Objective, ...]:
    """Parse and check a sweep's ``--objective`` values (a job's ``objectives``) against its job's metric."""
    parsed = tuple(parse_objective(t, flag) for t in texts)
    known = known_objectives(metric)
    seen: set[str] = set()
    for objective in parsed:
        if objective.name not in known:
            raise InputError(
                f"{flag} {str(objective)!r}: unknown objective {objective.name!r}; choose one of: "
                f"{', '.join(known)}"
            )
        if objective.name in seen:
            raise InputError(f"{flag}: {objective.name!r} is named twice; name each objective once")
        seen.add(objective.name)
    if parsed and parsed[0].name in COSTS:
        raise InputError(
            f"{flag} {str(parsed[0])!r}: the first objective is the sweep's metric and must be one the "
            f"model reports ({', '.join(n for n in known if n not in COSTS)}); list model costs after it"
        )
    return parsed


def check_constraints(texts: Sequence[str], flag: str = "--constraint") -> tuple[Constraint, ...]:
    """Parse a sweep's ``--constraint`` values (a job's ``constraints``): each bounds a model cost."""
    parsed = tuple(parse_constraint(t, flag) for t in texts)
    for constraint in parsed:
        if constraint.name not in COSTS:
            raise InputError(
                f"{flag} {str(constraint)!r}: a constraint bounds a model cost ({', '.join(COSTS)}), "
                f"got {constraint.name!r}; to pick among trials by a metric, use export --pick"
            )
    return parsed


def violations(values: Mapping[str, Any], constraints: Iterable[Constraint]) -> list[str]:
    """The constraints ``values`` break, each as ``params=250000 breaks params<=200000``."""
    out = []
    for c in constraints:
        value = values.get(c.name)
        if isinstance(value, int | float) and not c.holds(float(value)):
            out.append(f"{c.name}={float(value):g} breaks {c}")
    return out


def values_of(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> dict[str, float] | None:
    """The objectives' values in ``metrics``, or None when one is missing or not finite."""
    out = {}
    for o in objectives:
        value = metrics.get(o.name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return None
        out[o.name] = float(value)
    return out


def parsed(texts: Sequence[str]) -> tuple[Objective, ...]:
    """Objectives as a sweep recorded them (already checked when it started)."""
    return tuple(parse_objective(t) for t in texts)


def at_epoch(history: Sequence[Mapping[str, Any]], epoch: int | None) -> Mapping[str, Any]:
    """The history row of ``epoch`` (a trial's best epoch by the first objective), or {}: a trial's
    objective values are all read at that epoch, the one its config is exported with."""
    return next((h for h in history if h.get("training_iteration") == epoch), {})


def is_multi_objective(texts: Sequence[str]) -> bool:
    return len(texts) > 1


@dataclass(frozen=True)
class Candidate:
    """A finished trial as the Pareto logic sees it: its objective values and what it stands for."""

    trial_id: str
    values: dict[str, float]
    item: Any = field(default=None, compare=False)  # the trial row or summary it came from


def pareto_set(candidates: Sequence[Candidate], objectives: Sequence[Objective]) -> list[Candidate]:
    """The non-dominated candidates, best first by the first objective (then the others)."""
    points = [tuple(o.minimised(c.values[o.name]) for o in objectives) for c in candidates]
    members = [candidates[i] for i in front(points)]
    return sorted(
        members, key=lambda c: (tuple(o.minimised(c.values[o.name]) for o in objectives), c.trial_id)
    )


@dataclass(frozen=True)
class Pick:
    """How one configuration is chosen from a front: the best by ``objective`` among the
    members that meet every constraint in ``where``."""

    objective: Objective
    where: tuple[Constraint, ...] = ()

    def choose(self, members: Sequence[Candidate]) -> Candidate | None:
        fits = [
            c for c in members if self.objective.name in c.values and not violations(c.values, self.where)
        ]
        if not fits:
            return None
        return min(fits, key=lambda c: (self.objective.minimised(c.values[self.objective.name]), c.trial_id))

    def __str__(self) -> str:
        return str(self.objective) + (f" where {' and '.join(map(str, self.where))}" if self.where else "")


def parse_pick(text: str, objectives: Sequence[Objective]) -> Pick:
    """``val_accuracy:max where params<=100000 and latency_ms<1`` -> Pick; names must be objectives."""
    head, _, tail = str(text).partition(" where ")
    objective = parse_objective(head, flag="--pick")
    where = tuple(parse_constraint(p, flag="--pick") for p in re.split(r"\s+and\s+|,", tail) if p.strip())
    names = [o.name for o in objectives]
    for name in [objective.name, *(c.name for c in where)]:
        if name not in names:
            raise InputError(
                f"--pick {text!r}: {name!r} is not an objective of the sweep ({', '.join(names)})"
            )
    return Pick(objective, where)
