"""Best configs per job across recorded sweeps, leaderboards, comparisons and exports with provenance."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tuning_service.core import yamlio
from tuning_service.core.errors import InputError
from tuning_service.core.results import (
    COMPLETED,
    DIVERGED,
    DROPPED,
    ERRORED,
    INFEASIBLE,
    STOPPED,
    tally,
    versions,
    write_atomic,
)
from tuning_service.core.timestamps import iso_utc
from tuning_service.store import RANKED, RefitRow, Store, SweepRow, TrialRow, open_store

FORMATS = ("json", "yaml", "csv")
STATUS_ORDER = (COMPLETED, STOPPED, INFEASIBLE, DIVERGED, ERRORED, "running", "interrupted", DROPPED)


@dataclass(frozen=True)
class SweepSummary:
    """One sweep at a glance: outcome counts, epochs spent, its best trial and its refit."""

    sweep: SweepRow
    counts: dict[str, int]
    epochs: int
    best: TrialRow | None
    refit: RefitRow | None

    @property
    def trials(self) -> int:
        """The trials the sweep ran: dropped ones (see `results.DROPPED`) are kept but not counted."""
        return sum(n for status, n in self.counts.items() if status != DROPPED)

    @property
    def tally(self) -> str:
        """``12 (6 completed, 6 stopped early)``, ``+ 1 dropped`` if any."""
        return tally(self.counts, noun="")


def _fmt_time(value: datetime | None) -> str | None:
    return iso_utc(value) if value else None


def _sign(mode: str) -> float:
    return -1.0 if mode == "max" else 1.0


def rank_trials(trials: list[TrialRow], mode: str) -> list[TrialRow]:
    """Ranked trials (finished with a value) best first, then the rest by status."""
    ranked = [t for t in trials if t.status in RANKED and t.value is not None]
    ok = sorted(ranked, key=lambda t: (_sign(mode) * t.value, t.sweep_id, t.trial_id))  # type: ignore[operator]
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    rest = sorted(
        (t for t in trials if not (t.status in RANKED and t.value is not None)),
        key=lambda t: (order.get(t.status, 99), t.trial_id),
    )
    return ok + rest


def _in_reading_order(counts: dict[str, int]) -> dict[str, int]:
    """Counts per outcome, in the order a user reads them (completed first)."""
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    return {s: counts[s] for s in sorted(counts, key=lambda s: (order.get(s, 99), s))}


def status_counts(trials: list[TrialRow]) -> dict[str, int]:
    """Trials per outcome, in the order a user reads them (completed first)."""
    return _in_reading_order(Counter(t.status for t in trials))


def summarize(store: Store, sweeps: list[SweepRow]) -> list[SweepSummary]:
    """Per-sweep summaries, in the order given, from four queries that each return a row or
    so per sweep (counts and best trials are the database's work, not a scan of every trial)."""
    ids = [s.sweep_id for s in sweeps]
    counts = store.trial_counts(ids)
    bests = store.best_trials(ids)
    epochs = store.epoch_counts(ids)
    refits: dict[tuple[str, str], RefitRow] = {(r.sweep_id, r.trial_id): r for r in store.refits(ids)}
    out = []
    for sweep in sweeps:
        best = bests.get(sweep.sweep_id)
        refit = refits.get((sweep.sweep_id, best.trial_id)) if best else None
        if refit is None:  # a refit of an earlier best still says something
            refit = next((r for (s, _), r in refits.items() if s == sweep.sweep_id), None)
        summary_counts = _in_reading_order(counts.get(sweep.sweep_id, {}))
        out.append(SweepSummary(sweep, summary_counts, epochs.get(sweep.sweep_id, 0), best, refit))
    return out


def _job_metric(store: Store, job: str) -> tuple[str, str]:
    """The metric and mode of a job's newest sweep: older sweeps measured by another metric do not compete."""
    newest = store.sweeps(job=job)[0]
    return newest.metric, newest.mode


def top_trials(store: Store, job: str, top: int | None) -> list[tuple[TrialRow, SweepRow]]:
    metric, mode = _job_metric(store, job)
    return store.top_trials(job, metric=metric, mode=mode, limit=top)


def _refit_for(store: Store, trial: TrialRow) -> RefitRow | None:
    return next((r for r in store.refits([trial.sweep_id]) if r.trial_id == trial.trial_id), None)


def config_record(trial: TrialRow, sweep: SweepRow, *, rank: int, refit: RefitRow | None) -> dict[str, Any]:
    """The record downstream training reads: config, metric, where it came from, which versions."""
    record: dict[str, Any] = {
        "job": sweep.job,
        "rank": rank,
        "metric": sweep.metric,
        "mode": sweep.mode,
        "value": trial.value,
        "epoch": trial.best_epoch,
        "config": dict(trial.config),
        "sweep_id": sweep.sweep_id,
        "trial_id": trial.trial_id,
        "date": _fmt_time(trial.ended_at or sweep.started_at),
        "searcher": sweep.searcher,
        "scheduler": sweep.scheduler,
        "seed": sweep.seed,
        "versions": dict(sweep.versions),
    }
    if refit is not None:
        record["test"] = {
            "metric": refit.test_metric,
            "value": refit.test_value,
            "metrics": dict(refit.test_metrics),
            "epochs": refit.epochs,
            "model": refit.model_path,
            "date": _fmt_time(refit.created_at),
        }
    return record


def best_configs(store: Store, *, job: str | None = None, top: int = 1) -> list[dict[str, Any]]:
    """The best ``top`` configs of each job (or of ``job``) across every recorded sweep."""
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise InputError(f"--top must be an integer >= 1, got {top!r}")
    if job is not None:
        store.check_job(job)
    records = []
    for name in [job] if job is not None else store.jobs():
        for rank, (trial, sweep) in enumerate(top_trials(store, name, top), 1):
            records.append(config_record(trial, sweep, rank=rank, refit=_refit_for(store, trial)))
    if not records:
        which = f"job {job!r} has" if job is not None else "no job has"
        raise InputError(f"{which} a finished trial with a valid metric in {store.display_url}")
    return records


def summary_dict(s: SweepSummary) -> dict[str, Any]:
    """A sweep summary as plain data (JSON output of results and compare)."""
    sweep, best, refit = s.sweep, s.best, s.refit
    return {
        "sweep_id": sweep.sweep_id,
        "job": sweep.job,
        "status": sweep.status,
        "message": sweep.message,
        "metric": sweep.metric,
        "mode": sweep.mode,
        "searcher": sweep.searcher,
        "scheduler": sweep.scheduler,
        "seed": sweep.seed,
        "started": _fmt_time(sweep.started_at),
        "ended": _fmt_time(sweep.ended_at),
        "wall_time_s": sweep.wall_time_s,
        "trials": s.trials,
        "counts": s.counts,
        "epochs": s.epochs,
        "best": None
        if best is None
        else {
            "trial_id": best.trial_id,
            "value": best.value,
            "epoch": best.best_epoch,
            "config": best.config,
        },
        "test": None
        if refit is None
        else {
            "trial_id": refit.trial_id,
            "metric": refit.test_metric,
            "value": refit.test_value,
            "model": refit.model_path,
        },
        "cluster_address": sweep.cluster_address,
        "sweep_dir": sweep.sweep_dir,
    }


def trial_dict(t: TrialRow) -> dict[str, Any]:
    return {
        "sweep_id": t.sweep_id,
        "trial_id": t.trial_id,
        "status": t.status,
        "message": t.message,
        "value": t.value,
        "epoch": t.best_epoch,
        "epochs": t.epochs,
        "config": t.config,
        "duration_s": t.duration_s,
        "node_ip": t.node_ip,
        "node_id": t.node_id,
        "checkpoint": t.checkpoint,
        "ended": _fmt_time(t.ended_at),
    }


def best_config(
    job: str, *, db: str | None = None, storage: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The best recorded configuration of ``job`` across all sweeps, with its provenance.

    >>> best_config("telco_churn")["config"]  # doctest: +SKIP
    {'learning_rate': 0.0031, 'units': 64, ...}
    """
    with open_store(db, storage=storage, must_exist=True) as store:
        return best_configs(store, job=job, top=1)[0]


# -- exports ---------------------------------------------------------------------------------


def render_export(records: list[dict[str, Any]], fmt: str, *, database: str) -> str:
    """The export file's text: a document (json, yaml) or one flat row per config (csv)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "csv":
        return _csv(records)
    document = {
        "exported_at": iso_utc(),
        "exported_by": {"tuning-service": versions().get("tuning-service", "unknown")},
        "database": database,
        "configs": records,
    }
    return json.dumps(document, indent=2, default=str) + "\n" if fmt == "json" else yamlio.dumps(document)


def _csv(records: list[dict[str, Any]]) -> str:
    """Flat columns: config.<name>, test.<metric>, versions.<package>; pandas reads it as is."""
    flat = []
    for r in records:
        row = {k: v for k, v in r.items() if k not in ("config", "versions", "test", "objectives")}
        row.update({f"objectives.{k}": v for k, v in r.get("objectives", {}).items()})
        row.update({f"config.{k}": v for k, v in r["config"].items()})
        if "test" in r:
            row["test.metric"] = r["test"]["metric"]
            row["test.value"] = r["test"]["value"]
            row["test.model"] = r["test"]["model"]
        row.update({f"versions.{k}": v for k, v in r["versions"].items()})
        flat.append(row)
    columns: list[str] = []
    for row in flat:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    return out.getvalue()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Refuse an export path we could not write, before reading anything; creates nothing."""
    target = Path(os.path.expanduser(path))
    shown = str(path)
    if target.is_dir():
        raise InputError(f"cannot write export to {shown!r}: it is a directory")
    parent = target.absolute().parent
    if not parent.exists():
        raise InputError(f"cannot write export to {shown!r}: directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise InputError(f"cannot write export to {shown!r}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(f"cannot write export to {shown!r}: permission denied")
    return target


def write_export(text: str, path: str | os.PathLike[str]) -> Path:
    """Write atomically: readers see the previous export or the new one, never half of one."""
    target = check_writable(path)
    try:
        write_atomic(target, text)
    except OSError as exc:
        raise InputError(f"cannot write export to {str(path)!r}: {exc.strerror or exc}") from None
    return target


# -- comparisons -----------------------------------------------------------------------------


def compare(store: Store, first: str, second: str) -> list[SweepSummary]:
    """Two sweeps side by side (ids or unique prefixes)."""
    a, b = store.find_sweep(first), store.find_sweep(second)
    return summarize(store, [a, b])
