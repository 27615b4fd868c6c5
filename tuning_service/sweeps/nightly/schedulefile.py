"""The schedule file (sweeps.yaml): named sweeps with a cron time, checked in full with line numbers."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuning_service.core import yamlio  # the project's one YAML reader
from tuning_service.core.errors import InputError
from tuning_service.core.job import FOLDER_NAME_RULE, is_folder_name
from tuning_service.core.registry import Registry, did_you_mean
from tuning_service.core.settings import by_file_key, by_flag, by_name, sweep_settings
from tuning_service.core.spec import SweepSpec
from tuning_service.sweeps.nightly import cron

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from tuning_service.core.job import Job

TOP_KEYS = ("defaults", "sweeps")
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_WARM_START = 3
# A lock not renewed for this long belongs to a scheduler that died; its sweep may run again.
DEFAULT_LOCK_TTL_S = 600.0
# Target submit: the scheduler waits this long for a submission to end, then stops it (a sweep
# with a time budget: that budget plus SUBMIT_SLACK_S, for the head's start-up and queueing).
DEFAULT_WAIT_TIMEOUT_S = 24 * 3600.0
SUBMIT_SLACK_S = 3600.0

# Where a sweep runs. Each entry runs one sweep and reports its outcome (see `targets`).
TARGETS = Registry("target")
TARGETS.add_lazy("local", "tuning_service.sweeps.nightly.targets:run_here")
TARGETS.add_lazy("address", "tuning_service.sweeps.nightly.targets:run_here")
TARGETS.add_lazy("submit", "tuning_service.sweeps.nightly.targets:submit_and_wait")


@dataclass(frozen=True)
class ScheduledSweep:
    """One named sweep of the schedule file, ready to run when its cron time comes.

    ``spec`` is the sweep as `tuning-service run` would take it, without warm-start
    points (those are looked up in the store at each run).
    """

    name: str
    spec: SweepSpec
    storage: str  # this machine's results root: the schedule's database by default, and exports
    cron: dict[str, str]
    cron_text: str
    time_zone: str
    target: str = "local"
    jobs_api: str | None = None  # target submit: http://HEAD:8265
    python: str = "python"
    include: tuple[str, ...] = ()
    warm_start: int = DEFAULT_WARM_START
    export_dir: Path = Path(".")
    lock_ttl_s: float = DEFAULT_LOCK_TTL_S
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    line: int = 0
    job_name: str = ""
    metric: str = ""
    mode: str = "max"

    def trigger(self) -> CronTrigger:
        return cron.make_trigger(self.cron, self.time_zone)


@dataclass(frozen=True)
class Schedule:
    """Every sweep of one schedule file, in file order."""

    path: Path
    sweeps: tuple[ScheduledSweep, ...]

    def names(self) -> list[str]:
        return [s.name for s in self.sweeps]


@dataclass(frozen=True)
class Field:
    """One key a sweep (or the defaults block) may set: its check, and what it accepts."""

    check: Callable[[Any], bool]
    accepts: str


def _int(minimum: int) -> Field:
    return Field(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum, f"an integer >= {minimum}"
    )


def _positive_number() -> Field:
    return Field(
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
        "a number > 0",
    )


def _text() -> Field:
    return Field(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")


def _mapping() -> Field:
    return Field(lambda v: isinstance(v, Mapping), "a mapping")


# The schedule's own keys; a sweep's settings are SweepSpec's (`settings.by_file_key`).
SCHEDULE_FIELDS: dict[str, Field] = {
    "cron": Field(lambda v: isinstance(v, str | Mapping), "a crontab string or a mapping of cron fields"),
    "time_zone": _text(),
    "target": _text(),
    "python": _text(),
    "include": Field(
        lambda v: isinstance(v, list) and all(isinstance(i, str) and i for i in v), "a list of paths"
    ),
    "remote_storage": _text(),
    "export": _text(),
    "warm_start": _int(0),
    "lock_ttl_s": _positive_number(),
    "wait_timeout_s": _positive_number(),
    # The earlier name of cpus_per_trial and gpus_per_trial together: {cpu: N, gpu: M}.
    "resources_per_trial": _mapping(),
}
# Every key a sweep (or the defaults block) may set, the settings' earlier names included.
FIELDS: dict[str, Field] = {
    **{key: Field(item.takes, item.accepts()) for key, item in by_file_key().items()},
    **SCHEDULE_FIELDS,
}
# The names errors list: each setting under its `run` option's name, and the schedule's own keys.
ACCEPTED = sorted(
    {item.file_key for item in by_file_key().values() if item.file_key}
    | set(SCHEDULE_FIELDS) - {"resources_per_trial"}
)
RESOURCES_KEY = "resources_per_trial"
RESOURCES = {"cpu": "cpus_per_trial", "gpu": "gpus_per_trial"}
REQUIRED = ("job", "cron")
# Keys that only make sense for some targets.
TARGET_KEYS = {
    "address": ("address", "submit"),
    "python": ("submit",),
    "include": ("submit",),
    "remote_storage": ("submit",),
    "wait_timeout_s": ("submit",),
}


@dataclass
class _Problems:
    """Every problem found in one file, each with its line and key path, reported together."""

    source: str
    found: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, line: int, path: str, message: str) -> None:
        # One problem, one line: a library's message may quote a value holding a line break.
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")
        self.found.append((line, path, one_line))

    def at(self, lines: Mapping[tuple[str, ...], int], key_path: tuple[str, ...], message: str) -> None:
        """A problem with the key at ``key_path``, on its line."""
        self.add(_line(lines, key_path), _dotted(key_path), message)

    def raise_if_any(self) -> None:
        if not self.found:
            return
        lines = [f"{self.source}:{line}: {path}: {message}" for line, path, message in sorted(self.found)]
        if len(lines) == 1:
            raise InputError(lines[0])
        raise InputError(f"{self.source}: {len(lines)} problems\n  " + "\n  ".join(lines))


def load_schedule(path: str | os.PathLike[str], *, check_jobs: bool = True) -> Schedule:
    """Read and check a schedule file; InputError lists every problem with its line and key.

    Relative paths in the file (job files, storage, database files, exports) are relative
    to the file, so cron, systemd and Kubernetes can run it from any directory. Nothing
    is created or written.
    """
    source = Path(path)
    if not os.path.isfile(source):
        raise InputError(f"schedule file {str(path)!r} does not exist")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"schedule file {str(path)!r} cannot be read: {exc}") from None
    problems = _Problems(str(path))
    data, lines = _compose(text, problems)
    if data is None:
        problems.raise_if_any()  # not YAML at all: nothing more to check
    base = source.absolute().parent
    sweeps = _sweeps(data, lines, base, problems, check_jobs=check_jobs)
    problems.raise_if_any()
    return Schedule(source, tuple(sweeps))


# -- reading YAML with line numbers ----------------------------------------------------------


def _compose(text: str, problems: _Problems) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse with YAML 1.2 scalars; record each key's line and report duplicate keys.

    PyYAML keeps the last of two equal keys without a word, so the node tree is
    walked here before the data is built.
    """
    lines: dict[tuple[str, ...], int] = {(): 1}
    try:
        node = yamlio.compose(text)
        if node is None:
            return None, lines
        _walk(node, (), lines, problems)
        return yamlio.construct(node), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        problems.add(line, "(file)", f"not valid YAML: {problem}")
        return None, lines


def _walk(
    node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int], problems: _Problems
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            # As the data will have it: the key `08:` is the number 8.
            key = str(yamlio.construct(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
                # PyYAML keeps the last one: check that one, and say where the first was.
                problems.add(
                    line, _dotted((*path, key)), f"duplicate key {key!r} (first at line {seen[key]})"
                )
            seen.setdefault(key, line)
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, str(index))] = item.start_mark.line + 1
            _walk(item, (*path, str(index)), lines, problems)


def _dotted(path: tuple[str, ...]) -> str:
    """The key path as the problem lines show it; a key holding a line break shows it escaped."""
    return ".".join(p if p.isprintable() else p.encode("unicode_escape").decode() for p in path) or "(file)"


def _line(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int:
    """The line of ``path``'s key, else of its nearest parent in the file."""
    while path not in lines:
        path = path[:-1]
    return lines[path]


# -- checking --------------------------------------------------------------------------------


def _sweeps(
    data: Any, lines: dict[tuple[str, ...], int], base: Path, problems: _Problems, *, check_jobs: bool
) -> list[ScheduledSweep]:
    if not isinstance(data, Mapping):
        problems.add(1, "(file)", f"expected a mapping with 'sweeps' (and 'defaults'), got {_kind(data)}")
        return []
    for key in data:
        if key not in TOP_KEYS:
            problems.add(
                _line(lines, (str(key),)),
                _dotted((str(key),)),
                f"unknown key {key!r} (accepted: {', '.join(TOP_KEYS)}){did_you_mean(str(key), list(TOP_KEYS))}",
            )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.add(
            _line(lines, ("defaults",)),
            "defaults",
            f"expected a mapping of sweep keys, got {_kind(defaults)}",
        )
        defaults = {}
    # A bad default is reported once, here; the sweeps are checked without it.
    _, defaults, default_keys = _check_keys(defaults, ("defaults",), lines, problems)
    sweeps = data.get("sweeps")
    if not isinstance(sweeps, Mapping) or not sweeps:
        where = lines.get(("sweeps",), 1)
        problems.add(where, "sweeps", f"expected a mapping of sweep names to sweeps, got {_kind(sweeps)}")
        return []
    out = []
    for name, body in sweeps.items():
        path = ("sweeps", str(name))
        if not is_folder_name(name):
            # The name becomes folders (<storage>/<job>/schedules/<name>) and the lock's key.
            rule = FOLDER_NAME_RULE if isinstance(name, str) else "a string: quote it"
            problems.add(_line(lines, path), _dotted(path), f"sweep name {name!r} must be {rule}")
            continue
        if not isinstance(body, Mapping):
            problems.add(
                _line(lines, path), _dotted(path), f"expected a mapping of sweep keys, got {_kind(body)}"
            )
            continue
        ok, values, keys = _check_keys(body, path, lines, problems)
        merged, origins = {**defaults, **values}, {**default_keys, **keys}
        sweep = _sweep(str(name), merged, origins, path, lines, base, problems, ok=ok, check_jobs=check_jobs)
        if sweep is not None:
            out.append(sweep)
    return out


def _check_keys(
    body: Mapping[str, Any], path: tuple[str, ...], lines: dict[tuple[str, ...], int], problems: _Problems
) -> tuple[bool, dict[str, Any], dict[str, tuple[str, ...]]]:
    """Unknown keys and wrong types; the well-typed values under today's names, and each one's key path.

    The ok flag is True when every key is known and well typed. A setting's earlier name
    (an alias) reads as its `run` option's name; ``resources_per_trial`` sets both
    cpus_per_trial and gpus_per_trial.
    """
    ok = True
    values: dict[str, Any] = {}
    where: dict[str, tuple[str, ...]] = {}

    def keep(name: str, value: Any, key_path: tuple[str, ...]) -> None:
        nonlocal ok
        if name in where:
            problems.at(
                lines, key_path, f"{key_path[-1]!r} and {where[name][-1]!r} both set {name!r}; keep one"
            )
            ok = False
        values[name], where[name] = value, key_path

    for key, value in body.items():
        key_path = (*path, str(key))
        spec = FIELDS.get(str(key))
        if spec is None:
            problems.at(
                lines,
                key_path,
                f"unknown key {key!r} (accepted: {', '.join(ACCEPTED)}){did_you_mean(str(key), list(FIELDS))}",
            )
            ok = False
        elif not spec.check(value):
            problems.at(lines, key_path, f"expected {spec.accepts}, got {value!r} ({_kind(value)})")
            ok = False
        elif key == RESOURCES_KEY:
            if not _resources(value, key_path, lines, problems):
                ok = False
                continue
            for resource, name in RESOURCES.items():  # a resource left out takes its default, as before
                keep(name, float(value.get(resource, by_name()[name].default)), key_path)
        else:
            setting = by_file_key().get(str(key))  # None: one of the schedule's own keys
            keep(setting.file_key if setting is not None and setting.file_key else str(key), value, key_path)
    return ok, values, where


def _resources(
    resources: Mapping[str, Any],
    key_path: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    problems: _Problems,
) -> bool:
    """Check ``resources_per_trial: {cpu: N, gpu: M}``."""
    found = len(problems.found)
    for key, value in resources.items():
        if key not in RESOURCES:
            problems.at(lines, key_path, f"unknown resource {key!r} (accepted: {', '.join(RESOURCES)})")
        elif not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
            problems.at(lines, key_path, f"{key} must be a number >= 0, got {value!r}")
    return len(problems.found) == found


def _sweep(
    name: str,
    values: dict[str, Any],
    where: dict[str, tuple[str, ...]],
    path: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    base: Path,
    problems: _Problems,
    *,
    ok: bool,
    check_jobs: bool,
) -> ScheduledSweep | None:
    def report(key: str | None, message: str) -> None:
        key_path = where[key] if key is not None and key in where else path
        prefix = f"sweep {name!r}: " if key_path[0] == "defaults" else ""
        problems.add(_line(lines, key_path), _dotted(key_path), prefix + message)

    before = len(problems.found)
    for key in REQUIRED:
        if key not in values:
            report(None, f"sweep {name!r} needs {key!r}")
    fields = _cron(values, report) if "cron" in values and ok else None
    if not ok or "job" not in values:
        return None
    checked = len(problems.found)  # a bad cron time or zone does not stop the checks below
    target = values.get("target", "local")
    if target not in TARGETS:
        try:
            TARGETS.check(target)
        except InputError as exc:
            report("target", str(exc))
        return None
    for key, targets in TARGET_KEYS.items():
        if key in values and target not in targets and where[key][:-1] == path:
            report(
                key, f"{key!r} is for target {' or '.join(targets)}, and this sweep's target is {target!r}"
            )
    if target in ("address", "submit") and "address" not in values:
        report("target", f"target {target!r} needs 'address' ({_ADDRESS_HELP[target]})")
        return None

    storage = _path(base, values.get("storage", SweepSpec.storage))
    database = _database(base, values.get("db"), report)
    if len(problems.found) > checked:
        return None
    remote = target == "submit"
    spec = SweepSpec(
        **_settings(values, base),
        job=_job_ref(base, values["job"]),
        storage=values.get("remote_storage", "~/tuning-results") if remote else storage,
        address=values.get("address") if target == "address" else None,
        db=database,
    )
    job = _check_spec(spec, storage, target, values, report) if check_jobs else None
    if len(problems.found) > before or fields is None:
        return None
    job_name = job.name if job is not None else Path(str(values["job"])).stem
    export = (
        _path(base, values["export"])
        if "export" in values
        else os.path.join(storage, job_name, "schedules", name)
    )
    return ScheduledSweep(
        name=name,
        spec=spec,
        storage=storage,
        cron=fields,
        cron_text=values["cron"] if isinstance(values["cron"], str) else cron.describe(fields),
        time_zone=values.get("time_zone", DEFAULT_TIME_ZONE),
        target=target,
        jobs_api=values.get("address") if remote else None,
        python=values.get("python", "python"),
        include=tuple(_path(base, p) for p in values.get("include", [])),
        warm_start=values.get("warm_start", DEFAULT_WARM_START),
        export_dir=Path(export),
        lock_ttl_s=float(values.get("lock_ttl_s", DEFAULT_LOCK_TTL_S)),
        wait_timeout_s=float(values.get("wait_timeout_s", _wait_default(spec.time_budget_s))),
        line=_line(lines, path),
        job_name=job_name,
        metric=job.metric if job is not None else "",
        mode=job.mode if job is not None else "max",
    )


# Settings the schedule resolves itself: the job and paths next to the file, where the sweep runs.
_OWN_SETTINGS = ("job", "storage", "address", "db")


def _settings(values: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The sweep's settings as SweepSpec takes them; paths are relative to the schedule file."""
    out: dict[str, Any] = {}
    for item in sweep_settings():
        key = item.file_key
        if key is None or key not in values or item.name in _OWN_SETTINGS:
            continue
        value = values[key]
        if item.how.path is not None:
            value = _path(base, value)
        elif item.kind is float:
            value = float(value)
        elif item.kind is dict:
            value = dict(value)
        elif item.kind is tuple:
            value = tuple(value)
        out[item.name] = value
    return out


def _wait_default(time_budget_s: float | None) -> float:
    return DEFAULT_WAIT_TIMEOUT_S if time_budget_s is None else time_budget_s + SUBMIT_SLACK_S


_ADDRESS_HELP = {
    "address": "a Ray cluster: auto, HOST:PORT or ray://HOST:PORT",
    "submit": "the cluster's Jobs API, http://HEAD:8265",
}


def _cron(values: dict[str, Any], report: Callable[[str | None, str], None]) -> dict[str, str] | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = values.get("time_zone", DEFAULT_TIME_ZONE)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name longer than a file name
        report(
            "time_zone",
            f"unknown time zone {zone!r}; use an IANA name such as UTC, Europe/Paris or America/New_York",
        )
        zone = None
    try:
        fields = cron.cron_fields(values["cron"])
        cron.make_trigger(fields, zone or DEFAULT_TIME_ZONE)  # refuses what APScheduler cannot read
    except ValueError as exc:
        report("cron", f"invalid cron expression {values['cron']!r}: {exc}")
        return None
    from datetime import UTC, datetime

    if not cron.fires(fields, zone or DEFAULT_TIME_ZONE, datetime.now(UTC)):
        report("cron", f"cron expression {values['cron']!r} never fires (not within ten years)")
        return None
    return fields if zone else None


def _check_spec(
    spec: SweepSpec,
    storage: str,
    target: str,
    values: dict[str, Any],
    report: Callable[[str | None, str], None],
) -> Job | None:
    """What `run` checks before Ray starts, each problem reported at the key that causes it."""
    from tuning_service.data.catalog import load_job
    from tuning_service.raytune.schedulers import SCHEDULERS, validate_scheduler
    from tuning_service.raytune.searchers import SEARCHERS, check_pairing, validate_searcher

    try:
        job = load_job(spec.job)
    except InputError as exc:
        report("job", str(exc))
        return None
    for kind, registry, options_key, validate in (
        (
            "searcher",
            SEARCHERS,
            "searcher_options",
            lambda: validate_searcher(spec.searcher, job.space, spec.searcher_options),
        ),
        (
            "scheduler",
            SCHEDULERS,
            "scheduler_options",
            lambda: validate_scheduler(
                spec.scheduler_name,
                spec.scheduler_options,
                searcher=spec.searcher,
                space=job.space,
                max_t=spec.max_epochs or job.max_epochs,
                checkpoint_frequency=spec.checkpoint_frequency,
            ),
        ),
    ):
        try:
            registry.check(getattr(spec, kind))
            validate()
        except InputError as exc:
            report(options_key if options_key in values and "option" in str(exc) else kind, str(exc))
    try:
        check_pairing(spec.searcher, spec.scheduler_name)
    except InputError as exc:
        report("scheduler" if "scheduler" in values else "searcher", str(exc))
    try:
        if target == "submit":
            from tuning_service.sweeps.submission import parse_jobs_url

            parse_jobs_url(values["address"])
            spec.replace(storage=tempfile.gettempdir()).validate()  # its storage is on the head
        else:
            spec.validate()
    except InputError as exc:
        report(_key_of(str(exc), values), str(exc))
    if target == "local":
        from tuning_service.raytune.raysession import check_fits

        try:
            check_fits(
                spec.cpus_per_trial, spec.gpus_per_trial, os.cpu_count() or 1, math.inf, "this machine"
            )
        except InputError as exc:
            report("cpus_per_trial" if "cpus_per_trial" in values else "gpus_per_trial", str(exc))
    from tuning_service.store import check_database

    try:
        check_database(spec.db, storage)
    except InputError as exc:
        report("db" if "db" in values else "storage", str(exc))
    return job


def _key_of(message: str, values: Mapping[str, Any]) -> str | None:
    """The key of the setting SweepSpec.validate's message names by its `run` option."""
    flag = message.split(maxsplit=1)[0].rstrip(":") if message else ""
    setting = by_flag().get(flag)
    key = setting.file_key if setting is not None else None
    return key if key in values else None


def _path(base: Path, value: str) -> str:
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else base / path)


def _job_ref(base: Path, ref: str) -> str:
    """A job file named relative to the schedule file; names and module paths as given."""
    from tuning_service.data.jobfile import SUFFIXES

    part, sep, attr = ref.partition(":")
    if part.endswith(".py") or part.lower().endswith(SUFFIXES):
        candidate = Path(_path(base, part))
        if os.path.exists(candidate):
            return str(candidate) + sep + attr
    return ref


def _database(base: Path, url: str | None, report: Callable[[str | None, str], None]) -> str | None:
    """A SQLite file named relative to the schedule file; other URLs as given."""
    if url is None:
        return None
    from tuning_service.store.engine import parse_url

    try:
        parsed = parse_url(url)
    except InputError as exc:
        report("db", str(exc))
        return url
    database = parsed.database
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and not Path(os.path.expanduser(database)).is_absolute()
    ):
        return f"sqlite:///{_path(base, database)}"
    return url


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
