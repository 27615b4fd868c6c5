"""Submit a sweep to a Ray cluster as a Ray Job; list, follow, stop and read its submissions."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from tuning_service.core import settings
from tuning_service.core.auth import bearer_headers, missing_or_wrong, token_source, warn_if_sent_in_clear
from tuning_service.core.errors import InputError, SweepError, SweepStopped
from tuning_service.core.spec import SweepSpec
from tuning_service.raytune.raysession import check_fits, check_reachable, connect_timeout

log = logging.getLogger(__name__)

# Marks our submissions among every Ray Job on the cluster (metadata values are strings).
MARK = "tuning-service"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_URL = re.compile(r"^(https?)://(\[[0-9a-fA-F:]+\]|[^\s/:\[\]]+)(?::(\d+))?/?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A sweep's results land on the head; ~ is expanded there, by the sweep, not by a shell.
DEFAULT_REMOTE_STORAGE = "~/tuning-results"
# One Jobs API request (a submission uploads its working_dir) gets at most this long.
REQUEST_TIMEOUT_S = 120.0
# Submissions in these states have ended.
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
T = TypeVar("T")


@dataclass(frozen=True)
class Submission:
    """One Ray Job as `tuning-service submissions` shows it."""

    submission_id: str
    status: str
    job: str
    message: str
    start_time: float | None  # seconds since the epoch
    end_time: float | None
    ours: bool
    sweep_id: str | None = None  # the sweep it runs (submissions of earlier versions did not say)


@dataclass(frozen=True)
class Staged:
    """What travels with a submission: the job reference the cluster sees, and the runtime_env."""

    job_ref: str
    runtime_env: dict[str, Any]


def parse_jobs_url(address: str) -> tuple[str, int]:
    """HOST and PORT of a Jobs API URL such as ``http://HEAD:8265``."""
    match = _URL.match(address or "")
    if not match:
        raise InputError(
            f"--address must be the Jobs API URL http://HOST:PORT (the head's dashboard, default port 8265), got {address!r}"
        )
    scheme, host, port = match.groups()
    return host.strip("[]"), int(port) if port else _DEFAULT_PORTS[scheme]


def connect(address: str, *, timeout: float | None = None) -> Any:
    """A JobSubmissionClient for ``address`` that sends this machine's token, or a clear refusal."""
    timeout = connect_timeout() if timeout is None else timeout
    _quiet_ray_clients()
    host, port = parse_jobs_url(address)
    warn_if_sent_in_clear(address)
    check_reachable(host, port, timeout=timeout, what="the Ray Jobs API")
    headers = bearer_headers()  # explicit: Ray adds one only if RAY_AUTH_MODE was set before import
    from ray.job_submission import JobSubmissionClient

    # The client asks the server's version first: a port that takes connections but never
    # answers HTTP (another service, a stuck head) must not hang the command.
    return api_call(
        address, lambda: JobSubmissionClient(address.rstrip("/"), headers=headers), timeout=timeout
    )


def api_call(
    address: str, call: Callable[[], T], *, submission_id: str | None = None, timeout: float | None = None
) -> T:
    """One Jobs API request, bounded (Ray's client sends every request without a timeout)."""
    from tuning_service.core.deadline import within

    limit = REQUEST_TIMEOUT_S if timeout is None else timeout
    with api_errors(address, submission_id):
        try:
            return within(limit, call, what=f"the Jobs API at {address}")
        except TimeoutError:
            raise InputError(
                f"the Jobs API at {address} did not answer within {limit:g}s; check that the address is the "
                "head's dashboard port (8265) and that the head is not overloaded"
            ) from None


def _quiet_ray_clients() -> None:
    """Ray's job client logs each upload and websocket close at INFO; show them only with -v."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in ("ray.dashboard", "ray._private.runtime_env"):
            logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def api_errors(address: str, submission_id: str | None = None) -> Iterator[None]:
    """Turn the Jobs API's failures into one-line errors a user can act on."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError:
        raise InputError(
            f"the Jobs API at {address} refused this client: {missing_or_wrong(token_source())}"
        ) from None
    except requests.RequestException as exc:
        raise InputError(f"cannot use the Jobs API at {address}: {exc}") from None
    except (ConnectionError, RuntimeError) as exc:
        text = str(exc)
        if submission_id is not None and "404" in text:
            raise InputError(
                f"no submission {submission_id!r} at {address}; `tuning-service submissions list` shows them"
            ) from None
        raise InputError(
            f"the Jobs API at {address} failed: {text.splitlines()[0] if text else exc!r}"
        ) from None


def cluster_capacity(address: str, *, timeout: float | None = None) -> tuple[float, float] | None:
    """The most CPUs and GPUs any alive node has, from the dashboard; None if it cannot tell."""
    timeout = connect_timeout() if timeout is None else timeout
    import requests

    try:
        response = requests.get(
            f"{address.rstrip('/')}/api/v0/nodes",
            params={"limit": "10000", "detail": "false"},
            headers=bearer_headers(),
            timeout=timeout,
        )
        response.raise_for_status()
        rows = response.json()["data"]["result"]["result"]
    except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
        log.info("could not read the cluster's nodes from %s (%s); the sweep checks again", address, exc)
        return None
    alive = [r.get("resources_total") or {} for r in rows if r.get("state") == "ALIVE"]
    cpus = max((float(r.get("CPU", 0.0)) for r in alive), default=0.0)
    gpus = max((float(r.get("GPU", 0.0)) for r in alive), default=0.0)
    return cpus, gpus


def stage(job_ref: str, includes: Sequence[str], into: Path) -> Staged:
    """Copy the user's own job file(s) into ``into`` (the working_dir the cluster receives).

    A built-in job or an installed package travels as its name; a ``.py`` or YAML job
    file, the CSV a YAML job names next to it, and every ``--include`` path travel as
    files. A ``package.module:JOB`` outside site-packages travels in ``py_modules``.
    """
    from tuning_service.data.catalog import builtin_jobs
    from tuning_service.data.jobfile import SUFFIXES, read_job_file

    runtime_env: dict[str, Any] = {}
    remote_ref = job_ref
    path_part, sep, attr = job_ref.partition(":") if not os.path.exists(job_ref) else (job_ref, "", "")
    if job_ref in builtin_jobs():
        pass
    elif path_part.endswith(".py") or path_part.lower().endswith(SUFFIXES):
        source = Path(path_part)
        shutil.copy2(source, into / source.name)
        remote_ref = source.name + (sep + attr if sep else "")
        if source.suffix == ".py" and _importable_as(source):
            # As a module of the working_dir, the job's own functions reach the trial
            # workers by name (the working_dir is on their path too), as a package's do.
            remote_ref = f"{source.stem}:{attr or 'JOB'}"
        if source.suffix.lower() in SUFFIXES:
            csv = Path(str(read_job_file(source).get("csv", "")))
            if csv.parts and not csv.is_absolute() and ".." not in csv.parts:
                (into / csv).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source.parent / csv, into / csv)
    elif sep:
        local = _local_package(path_part)
        if local is not None:
            runtime_env["py_modules"] = [str(local)]
    for extra in includes:
        path = Path(extra)
        if not os.path.exists(path):
            raise InputError(f"--include {extra!r} does not exist")
        target = into / path.name
        if os.path.isdir(path):
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
    if any(into.iterdir()):
        runtime_env["working_dir"] = str(into)
    return Staged(remote_ref, runtime_env)


def _importable_as(source: Path) -> bool:
    """Whether ``source`` can be imported by its stem without shadowing another module."""
    import importlib.util

    if not source.stem.isidentifier():
        return False
    try:
        found = importlib.util.find_spec(source.stem)
    except (ImportError, ValueError):
        return False
    return found is None or (found.origin is not None and Path(found.origin).resolve() == source.resolve())


def _local_package(module_name: str) -> Path | None:
    """The top-level package (or module file) of ``module_name`` when it is not installed."""
    import importlib.util

    top = module_name.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.origin or top in ("tuning_service", "jobs"):
        return None
    origin = Path(spec.origin)
    if any(part in ("site-packages", "dist-packages") for part in origin.parts):
        return None
    return origin.parent if origin.name == "__init__.py" else origin


WARM_START_FILE = "tuning_service_warm_start.json"


def entrypoint(python: str, job_ref: str, run_args: Sequence[str], storage: str) -> str:
    """The shell command the cluster runs: `tuning-service run` on the head, joined to its cluster."""
    argv = [python, "-m", "tuning_service", "run", job_ref, *run_args]
    argv += ["--address", "auto", "--storage", storage, "--format", "json"]
    return shlex.join(argv)


def submit_sweep(
    spec: SweepSpec,
    run_args: Sequence[str],
    *,
    address: str,
    includes: Sequence[str] = (),
    python: str = "python",
) -> str:
    """Check the sweep here, then submit it as a Ray Job; returns the submission id.

    ``run_args`` are the `tuning-service run` options as the user gave them, minus
    the job, ``--address``, ``--storage`` and ``--format``. The token travels only in
    the HTTP header: never in the entrypoint, the metadata or the runtime_env.
    """
    from tuning_service.sweeps.runner import new_sweep_id, prepare

    # Checked with a local results root: the real one (spec.storage) is a path on the head.
    prepared = prepare(spec.replace(address="auto", storage=tempfile.gettempdir()))
    client = connect(address)
    capacity = cluster_capacity(address)
    if capacity is not None:
        check_fits(spec.cpus_per_trial, spec.gpus_per_trial, *capacity, f"the cluster at {address}")
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", prepared.job.name)
    # The submission names its sweep, so that its result can be read from the database.
    sweep_id = spec.sweep_id or new_sweep_id()
    submission_id = f"tuning-{name}-{sweep_id}"
    if spec.sweep_id is None:  # given, it is in run_args already
        run_args = [*run_args, *settings.by_name()["sweep_id"].argv(sweep_id)]
    with tempfile.TemporaryDirectory(prefix="tuning-submit-") as workdir:
        if spec.points_to_evaluate:
            # Warm-start configs travel as a file in the working_dir, read by `run --warm-start`.
            (Path(workdir) / WARM_START_FILE).write_text(json.dumps(list(spec.points_to_evaluate)))
            run_args = [*run_args, "--warm-start", WARM_START_FILE]
        staged = stage(spec.job, includes, Path(workdir))
        api_call(
            address,
            lambda: client.submit_job(
                entrypoint=entrypoint(python, staged.job_ref, run_args, spec.storage),
                runtime_env=staged.runtime_env,
                submission_id=submission_id,
                metadata={
                    MARK: _version(),
                    "job": prepared.job.name,
                    "sweep_id": sweep_id,
                    "searcher": spec.searcher,
                    "scheduler": spec.scheduler,
                },
            ),
        )
    log.info("submitted %s to %s", submission_id, address)
    return submission_id


def _version() -> str:
    try:
        return metadata.version("tuning-service")
    except metadata.PackageNotFoundError:
        return "unknown"


def list_submissions(address: str, *, everything: bool = False) -> list[Submission]:
    """Submissions on the cluster, oldest first: ours, or every Ray Job with ``everything``."""
    client = connect(address)
    details = api_call(address, client.list_jobs)
    found = [_submission(d) for d in details if d.submission_id]
    return sorted(
        (s for s in found if everything or s.ours), key=lambda s: (s.start_time or 0, s.submission_id)
    )


def _submission(details: Any) -> Submission:
    meta = details.metadata or {}
    return Submission(
        submission_id=details.submission_id,
        status=str(details.status),
        job=meta.get("job", ""),
        message=details.message or "",
        start_time=details.start_time / 1000 if details.start_time else None,
        end_time=details.end_time / 1000 if details.end_time else None,
        ours=MARK in meta,
        sweep_id=meta.get("sweep_id"),
    )


def check_id(submission_id: str) -> str:
    """A submission id as Ray's Jobs API routes it (an empty one would list every job)."""
    if not _ID.match(submission_id or ""):
        raise InputError(
            f"a submission id is letters, digits, '_', '-' and '.', as `submit` prints it, got {submission_id!r}"
        )
    return submission_id


def get_submission(address: str, submission_id: str) -> Submission:
    check_id(submission_id)
    client = connect(address)
    return _submission(
        api_call(address, lambda: client.get_job_info(submission_id), submission_id=submission_id)
    )


def get_logs(address: str, submission_id: str) -> str:
    check_id(submission_id)
    client = connect(address)
    logs: str = api_call(address, lambda: client.get_job_logs(submission_id), submission_id=submission_id)
    return logs


def follow_logs(address: str, submission_id: str, write: Callable[[str], None]) -> Submission:
    """Stream a submission's logs to ``write`` until it finishes; returns its final state."""
    check_id(submission_id)
    client = connect(address)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            write(chunk)

    # An unknown id fails here, not inside the websocket.
    api_call(address, lambda: client.get_job_info(submission_id), submission_id=submission_id)
    with api_errors(address, submission_id):
        asyncio.run(tail())  # until the submission ends (or Ctrl-C): a wait the user watches
    return _submission(
        api_call(address, lambda: client.get_job_info(submission_id), submission_id=submission_id)
    )


def wait_for_end(
    address: str,
    submission_id: str,
    *,
    timeout_s: float,
    poll_s: float = 15.0,
    stop: Callable[[], str | None] | None = None,
) -> Submission:
    """Read the submission's state every ``poll_s`` until it ends; past ``timeout_s``, stop it.

    A scheduler waits for its submissions one at a time: one that never ends (a stuck
    driver, trials waiting for a node that never comes) must not hold up every later
    sweep. SweepError names the state it was left in. ``stop``, asked at every poll, names
    a reason to stop the submission now (its run lost the schedule lock): SweepStopped.
    """
    started = time.monotonic()
    while True:
        submission = get_submission(address, submission_id)
        if submission.status in TERMINAL:
            return submission
        if stop is not None and (why := stop()):
            stop_submission(address, submission_id)
            raise SweepStopped(f"{why}; stopped submission {submission_id}")
        waited = time.monotonic() - started
        if waited >= timeout_s:
            try:
                stop_submission(address, submission_id)
                what = "stopped it"
            except InputError as exc:
                what = f"could not stop it ({exc})"
            raise SweepError(
                f"submission {submission_id} was still {submission.status} after {waited:.0f}s, the most "
                f"the scheduler waits (wait_timeout_s: {timeout_s:g}); {what}"
            )
        log.debug("%s is %s after %.0fs", submission_id, submission.status, waited)
        time.sleep(min(poll_s, max(0.0, timeout_s - waited)))


def stop_submission(address: str, submission_id: str) -> bool:
    """Ask the cluster to stop a submission; False when it had already finished."""
    check_id(submission_id)
    client = connect(address)
    return bool(api_call(address, lambda: client.stop_job(submission_id), submission_id=submission_id))


def best_record(logs: str) -> dict[str, Any] | None:
    """The best-config record a submitted sweep prints last (`run --format json`), from its logs."""
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"(?m)^\{", logs)]
    for start in reversed(starts):
        try:
            record, _ = decoder.raw_decode(logs, start)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "config" in record and "metric" in record:
            return record
    return None


def get_result(address: str, submission_id: str, *, db: str | None = None) -> dict[str, Any]:
    """The best configuration of a submission that succeeded: read from ``db``, the results
    database its sweep recorded in, where given; else from the record `run` prints last in
    its logs (the only thing the Jobs API returns from a head whose database is its own).
    """
    submission = get_submission(address, submission_id)
    if submission.status != "SUCCEEDED":
        raise SweepError(
            f"submission {submission_id} is {submission.status}"
            + (f": {submission.message}" if submission.message else "")
            + "; a best configuration exists once it has SUCCEEDED"
        )
    if db is not None:
        if submission.sweep_id is None:
            raise SweepError(
                f"submission {submission_id} does not name its sweep (an earlier version submitted it); "
                "read its result without --db"
            )
        return recorded_record(db, submission_id, submission.sweep_id)
    record = best_record(get_logs(address, submission_id))
    if record is None:
        raise SweepError(f"submission {submission_id} succeeded but its logs hold no best-config record")
    return record


def recorded_record(db: str, submission_id: str, sweep_id: str) -> dict[str, Any]:
    """The best-config record of the submission's sweep, from the results database ``db``."""
    from tuning_service.core.results import best_config_record
    from tuning_service.raytune.recording import recorded_result
    from tuning_service.store import open_store

    with open_store(db, must_exist=True) as store:
        rows = store.sweeps(ids=[sweep_id])
        if not rows:
            raise SweepError(
                f"submission {submission_id} ran sweep {sweep_id}, which is not in {store.display_url}: "
                "give the database the head records its sweeps in"
            )
        record = best_config_record(recorded_result(store, rows[0]))
    if record is None:
        raise SweepError(f"sweep {sweep_id} of submission {submission_id} has no best configuration")
    # With what the sweep ran, not this reading (its "created" is when it ended: sweep_result).
    record["versions"] = dict(rows[0].versions)
    return record
