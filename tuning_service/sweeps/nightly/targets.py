"""Where a scheduled sweep runs: here (embedded Ray or a cluster address) or as a Ray Job submission."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuning_service.core.spec import SweepSpec
    from tuning_service.sweeps.nightly.schedulefile import ScheduledSweep

log = logging.getLogger(__name__)

# How often a submitted sweep's status is read while the scheduler waits for it.
POLL_S = 15.0
# Asked while a sweep runs: a reason it must stop now (its run lost the schedule lock), or None.
Stop = Callable[[], "str | None"]


@dataclass(frozen=True)
class RunOutcome:
    """What one finished sweep of a scheduled run produced."""

    sweep_id: str | None
    metric: str
    mode: str
    value: float
    config: dict[str, Any]
    submission_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_here(sweep: ScheduledSweep, spec: SweepSpec, *, stop: Stop | None = None) -> RunOutcome:
    """Targets ``local`` and ``address``: the sweep runs in this process, on its own or the cluster's Ray.

    Raises SweepError when no trial produced a result (the run is recorded as failed), and
    SweepStopped once ``stop`` names a reason (the sweep is recorded as interrupted).
    """
    from tuning_service.core.errors import SweepError
    from tuning_service.sweeps.runner import run_sweep

    result = run_sweep(spec, stop=stop)
    best = result.best
    if best is None or best.value is None:  # run_sweep raises first; kept for the type checker
        raise SweepError(f"sweep {result.sweep_id}: no trial finished with a valid {result.metric}")
    return RunOutcome(result.sweep_id, result.metric, result.mode, best.value, dict(best.config))


def submit_and_wait(sweep: ScheduledSweep, spec: SweepSpec, *, stop: Stop | None = None) -> RunOutcome:
    """Target ``submit``: send the sweep to the cluster's Jobs API, wait for it, read its best config.

    The sweep records itself in the database the head reaches: ``--db`` is passed for a
    PostgreSQL database (without its password; the head supplies it, e.g. in PGPASSWORD
    or ~/.pgpass). Warm-start points travel as a file that `run --warm-start` reads.
    """
    from tuning_service.core.errors import SweepError
    from tuning_service.sweeps.submission import get_result, submit_sweep, wait_for_end

    address = sweep.jobs_api or ""
    submission_id = submit_sweep(
        spec,  # warm-start points travel as a file with the submission
        run_args(spec),
        address=address,
        includes=sweep.include,
        python=sweep.python,
    )
    log.info("%s: submitted %s to %s", sweep.name, submission_id, address)
    wait_for_end(address, submission_id, timeout_s=sweep.wait_timeout_s, poll_s=POLL_S, stop=stop)
    # SweepError unless SUCCEEDED; read from the database the sweep recorded in, where it is shared.
    record = get_result(address, submission_id, db=shared_db(spec))
    if record.get("value") is None:
        raise SweepError(f"submission {submission_id} reported no best value")
    return RunOutcome(
        record.get("sweep_id"),
        record["metric"],
        record.get("mode", sweep.mode),
        float(record["value"]),
        dict(record["config"]),
        submission_id=submission_id,
    )


def run_args(spec: SweepSpec) -> list[str]:
    """The `tuning-service run` options of a scheduled ``spec``, as `submit` forwards them.

    Paths in a schedule file are this machine's, so they stay here: a SQLite database (the
    sweep on the head records in its own default) and the dataset cache. A PostgreSQL
    database travels, without its password.
    """
    from tuning_service.core import settings

    here = {item.name: item.default for item in settings.sweep_settings() if item.how.path is not None}
    return settings.run_args(spec.replace(**here, db=shared_db(spec)))


def shared_db(spec: SweepSpec) -> str | None:
    """The sweep's database where the head records in it too (PostgreSQL); None for SQLite,
    a file on this machine (the sweep on the head records in its own default)."""
    from tuning_service.store.engine import parse_url

    if spec.db is None or parse_url(spec.db).get_backend_name() != "postgresql":
        return None
    return spec.db
