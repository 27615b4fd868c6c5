"""A recorded multi-objective sweep's Pareto front: its members, one picked by a rule, export records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.objectives import (
    Candidate,
    Objective,
    Pick,
    is_multi_objective,
    pareto_set,
    parse_pick,
    parsed,
    values_of,
)
from tuning_service.store import RANKED, Store, SweepRow


def objectives_of(sweep: SweepRow) -> tuple[Objective, ...]:
    """The objectives a sweep ran with (its spec's), or () for a sweep of one metric."""
    texts = sweep.spec.get("objectives") or []
    return parsed(texts) if is_multi_objective(texts) else ()


@dataclass(frozen=True)
class Front:
    """A sweep's Pareto front over its feasible ranked trials, best first by the first objective,
    and the member the pick rule chose (None when no member meets the rule)."""

    sweep: SweepRow
    objectives: tuple[Objective, ...]
    members: list[Candidate]
    pick: Pick
    picked: Candidate | None

    def records(self) -> list[dict[str, Any]]:
        """Each member as export writes it: config, objective values, provenance."""
        from tuning_service.sweeps.aggregate import config_record

        out = []
        for rank, c in enumerate(self.members, 1):
            record = config_record(c.item, self.sweep, rank=rank, refit=None)
            out.append({**record, "objectives": dict(c.values), "picked": c is self.picked})
        return out


def sweep_front(store: Store, sweep: SweepRow, rule: str | None = None) -> Front:
    """The Pareto front of a recorded multi-objective ``sweep``; ``rule`` picks one member
    (default: the first objective's best). InputError for a sweep of one objective."""
    objectives = objectives_of(sweep)
    if not objectives:
        raise InputError(
            f"sweep {sweep.sweep_id} optimised one metric ({sweep.metric}); a Pareto front needs a sweep run "
            "with two or more --objective"
        )
    pick = parse_pick(rule, objectives) if rule else Pick(objectives[0])
    members = pareto_set(candidates(store, sweep, objectives), objectives)
    return Front(sweep, objectives, members, pick, pick.choose(members))


def candidates(store: Store, sweep: SweepRow, objectives: tuple[Objective, ...]) -> list[Candidate]:
    """The sweep's trials that may stand on its front (ranked, feasible, every objective known),
    with their objectives' values at their best epoch, in trial order."""
    at_best = store.best_epoch_metrics(sweep.sweep_id)
    found = []
    for t in store.trials([sweep.sweep_id]):
        if t.status not in RANKED or t.value is None:
            continue  # infeasible, diverged, errored and dropped trials are never on the front
        row = {**at_best.get(t.trial_id, {}), sweep.metric: t.value}
        values = values_of(row, objectives)
        if values is not None:
            found.append(Candidate(t.trial_id, values, t))
    return found
