"""Warm start: the best distinct configs of a named sweep's earlier runs, to evaluate first."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tuning_service.store import RANKED
from tuning_service.sweeps.nightly.history import runs

if TYPE_CHECKING:
    from tuning_service.store import Store


def earlier_best_configs(
    store: Store, name: str, *, metric: str, mode: str, count: int
) -> list[dict[str, Any]]:
    """Up to ``count`` distinct configs, best first, from the sweeps earlier runs of ``name`` recorded.

    Only runs measured by the same metric and mode count: a job whose metric changed
    starts afresh. Whether each config still fits the job's space is checked when the
    searcher is built (`searchers.points.usable_points`).
    """
    if count < 1:
        return []
    sweep_ids = [
        r.sweep_id
        for r in runs(store, name)
        if r.sweep_id and r.metric == metric and (r.mode or mode) == mode
    ]
    if not sweep_ids:
        return []
    sign = -1.0 if mode == "max" else 1.0
    ranked = sorted(
        (t for t in store.trials(sweep_ids) if t.status in RANKED and t.value is not None),
        key=lambda t: (sign * t.value, t.sweep_id, t.trial_id),  # type: ignore[operator]
    )
    configs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for trial in ranked:
        key = json.dumps(trial.config, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            configs.append(dict(trial.config))
        if len(configs) == count:
            break
    return configs
