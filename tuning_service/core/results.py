"""A finished sweep's outcome: trial summaries, the best configuration, and the files written."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from tuning_service.core import yamlio
from tuning_service.core.errors import InputError
from tuning_service.core.objectives import (
    Candidate,
    Objective,
    at_epoch,
    is_multi_objective,
    pareto_set,
    parse_pick,
    parsed,
    values_of,
)
from tuning_service.core.timestamps import iso_utc

COMPLETED, STOPPED, DIVERGED, ERRORED = "completed", "stopped early", "diverged", "errored"
# A trial the results store saw that Ray Tune's final results do not hold (it started an
# instant before the sweep ended, or after the snapshot a resume started from): kept, never
# ranked, never deleted.
DROPPED = "dropped"
# A trial whose model breaks one of the sweep's constraints (see `objectives`): recorded, never best.
INFEASIBLE = "infeasible"
# Statuses that never rank on a leaderboard or as a best config, whatever their value.
UNRANKED = (DIVERGED, ERRORED, DROPPED, INFEASIBLE)
BEST_CONFIG_JSON, BEST_CONFIG_YAML, TRIALS_JSON = "best_config.json", "best_config.yaml", "trials.json"
PARETO_JSON = "pareto_front.json"
SWEEP_JSON = "sweep.json"
# Where a sweep keeps Tune's experiment (tuner.pkl, experiment_state-*.json, trial folders).
TRIALS_DIR = "trials"
# The searchers' optional libraries are recorded where installed: they decide the suggestions.
_VERSIONED = (
    "tuning-service", "ray", "tensorflow", "keras", "optuna", "hyperopt", "cmaes", "torch", "hpbandster",
    "ConfigSpace", "scikit-learn", "pandas",
)  # fmt: skip


@dataclass(frozen=True)
class TrialSummary:
    """One trial as a user reads it: its configuration, outcome and best epoch."""

    trial_id: str
    config: dict[str, Any]
    status: str
    value: float | None  # best value of the job's metric over the trial's epochs
    best_epoch: int | None
    epochs: int
    train_time_s: float
    error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # Multi-objective sweeps: every objective's value at ``best_epoch``.
    objectives: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepResult:
    """What `run_sweep` returns: all trials, ranked best first, and where files went."""

    sweep_id: str
    job: str
    metric: str
    mode: str
    searcher: str
    scheduler: str
    seed: int
    sweep_dir: Path
    trials: list[TrialSummary]
    wall_time_s: float
    max_epochs: int
    space: dict[str, Any] = field(default_factory=dict)  # Space.to_dict() of the job's space
    started: str = ""  # ISO 8601, UTC
    # When the sweep ended, ISO 8601 UTC: best_config.json's "created", the same in the file
    # and in what `run --format json` prints (read anew, the clock could have moved on).
    ended: str = ""
    # A multi-objective sweep's objectives (``val_accuracy:max``, first = ``metric``) and constraints.
    objectives: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    pick: str | None = None  # the rule choosing `chosen` from the front (`--pick`)

    @property
    def best(self) -> TrialSummary | None:
        ranked = self.leaderboard()
        return ranked[0] if ranked and ranked[0].value is not None else None

    @property
    def chosen(self) -> TrialSummary | None:
        """The trial best_config.json holds: the best, or the front member the ``pick`` rule
        chooses (None when no member meets it)."""
        if self.pick is None or not is_multi_objective(self.objectives):
            return self.best
        picked = parse_pick(self.pick, parsed(self.objectives)).choose(self.pareto())
        return None if picked is None else picked.item

    def leaderboard(self, top: int | None = None) -> list[TrialSummary]:
        """Trials with a finite metric, best first; diverged, errored and dropped trials last."""
        sign = -1.0 if self.mode == "max" else 1.0
        ok: list[TrialSummary] = []
        rest: list[TrialSummary] = []
        for t in self.trials:  # not `t not in ok`: dataclass equality made that quadratic
            (ok if t.value is not None and t.status not in UNRANKED else rest).append(t)
        ranked = sorted(ok, key=lambda t: sign * t.value) + rest  # type: ignore[operator]
        return ranked[:top] if top else ranked

    def pareto(self) -> list[Candidate]:
        """A multi-objective sweep's Pareto front over its ranked trials, best first by the first
        objective; [] for a sweep of one objective."""
        if not is_multi_objective(self.objectives):
            return []
        objectives = parsed(self.objectives)
        ranked = [t for t in self.trials if t.status not in UNRANKED and t.value is not None]
        found = [(t, values_of(t.objectives, objectives)) for t in ranked]
        return pareto_set([Candidate(t.trial_id, v, t) for t, v in found if v is not None], objectives)

    def counts(self) -> dict[str, int]:
        out = {COMPLETED: 0, STOPPED: 0, INFEASIBLE: 0, DIVERGED: 0, ERRORED: 0, DROPPED: 0}
        for trial in self.trials:
            out[trial.status] += 1
        return out

    @property
    def epochs(self) -> int:
        return sum(t.epochs for t in self.trials)


def tally(counts: Mapping[str, int], noun: str = "trials") -> str:
    """``12 trials (6 completed, 6 stopped early)``, plus ``+ 1 dropped`` when the store kept
    trials Ray Tune's results lack: dropped trials are not among the trials a sweep ran."""
    ran = {k: n for k, n in counts.items() if n and k != DROPPED}
    head = " ".join(str(x) for x in (sum(ran.values()), noun) if x != "")
    line = f"{head} ({', '.join(f'{n} {k}' for k, n in ran.items())})" if ran else head
    return line + (f" + {counts[DROPPED]} dropped" if counts.get(DROPPED) else "")


def versions() -> dict[str, str]:
    """Versions of the packages that decide a result, for provenance."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def with_objectives(trial: TrialSummary, objectives: tuple[Objective, ...]) -> TrialSummary:
    """The trial with every objective's value at its best epoch (where it has them all)."""
    values = values_of(at_epoch(trial.history, trial.best_epoch), objectives)
    return replace(trial, objectives=values) if values else trial


def best_config_record(result: SweepResult) -> dict[str, Any] | None:
    """The record downstream training reads: best config (or the one ``--pick`` chose), its
    metric and provenance."""
    best = result.chosen
    if best is None:
        return None
    return {
        "job": result.job,
        "sweep_id": result.sweep_id,
        "metric": result.metric,
        "mode": result.mode,
        "value": best.value,
        "epoch": best.best_epoch,
        "config": best.config,
        "trial_id": best.trial_id,
        "searcher": result.searcher,
        "scheduler": result.scheduler,
        "seed": result.seed,
        **({"pick": result.pick, "objectives": best.objectives} if result.pick else {}),
        "created": result.ended or iso_utc(),
        "versions": versions(),
    }


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) so readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(result: SweepResult) -> dict[str, Any] | None:
    """Write trials.json (and its columns, curves.npz) and, when a trial finished,
    best_config.json / .yaml to the sweep dir."""
    from tuning_service.core import curvefile  # NumPy: not for the commands that only read the store

    trials = [asdict(t) for t in result.leaderboard()]
    trials_json = result.sweep_dir / TRIALS_JSON
    write_atomic(trials_json, json.dumps(trials, indent=2, default=str))
    write_atomic(
        result.sweep_dir / curvefile.CURVES_NPZ, curvefile.encode(trials, result.metric, os.stat(trials_json))
    )
    meta = {k: v for k, v in asdict(result).items() if k not in ("trials", "sweep_dir")}
    write_atomic(result.sweep_dir / SWEEP_JSON, json.dumps(meta, indent=2, default=str))
    front = result.pareto()
    if front:
        members = [
            {"trial_id": c.trial_id, **c.values, "epoch": c.item.best_epoch, "config": c.item.config}
            for c in front
        ]
        document = {"objectives": result.objectives, "constraints": result.constraints, "front": members}
        write_atomic(result.sweep_dir / PARETO_JSON, json.dumps(document, indent=2, default=str) + "\n")
    record = best_config_record(result)
    if record is not None:
        write_atomic(result.sweep_dir / BEST_CONFIG_JSON, json.dumps(record, indent=2, default=str) + "\n")
        write_atomic(result.sweep_dir / BEST_CONFIG_YAML, yamlio.dumps(record))
    return record


def load_result(sweep_dir: Path, trials: list[TrialSummary] | None = None) -> SweepResult:
    """Read a finished sweep back from its directory (sweep.json and trials.json); ``trials``
    given (read from elsewhere, e.g. curves.npz), trials.json is not read."""
    sweep_dir = Path(sweep_dir)
    try:
        meta = json.loads((sweep_dir / SWEEP_JSON).read_text(encoding="utf-8"))
        if trials is None:
            rows = json.loads((sweep_dir / TRIALS_JSON).read_text(encoding="utf-8"))
            trials = [TrialSummary(**t) for t in rows]
    except (OSError, ValueError) as exc:
        raise InputError(f"{str(sweep_dir)!r} holds no readable sweep results ({exc})") from None
    return SweepResult(**meta, sweep_dir=sweep_dir, trials=trials)
