"""SweepSpec: one sweep's request, validated in full before Ray starts."""

from __future__ import annotations

import functools
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from tuning_service.core.errors import InputError

DEFAULT_JOB = "digits"
DEFAULT_STORAGE = "tuning-results"
ADDRESS_FORMS = "'auto', HOST:PORT or ray://HOST:PORT"
_ADDRESS = re.compile(r"^(auto|local|ray://[^\s:/]+(:\d+)?|[^\s:/]+:\d+)$")
# A sweep id, as `runner.new_sweep_id` makes one: sortable by start time, safe as a folder name.
SWEEP_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
SWEEP_ID_FORM = "YYYYmmdd-HHMMSS-xxxxxx (x: a lowercase hex digit)"


# Searchers that work only beside one scheduler, which works only beside them: BOHB's model
# learns from the results of Hyperband-for-BOHB's rungs, and that scheduler tells the
# searcher which trials it pauses (other searchers have no such hook).
PAIRED_SCHEDULER = {"bohb": "bohb"}
DEFAULT_SCHEDULER = "asha"


def default_scheduler(searcher: str) -> str:
    """The scheduler a sweep gets when none is named: the searcher's partner, else ASHA."""
    return PAIRED_SCHEDULER.get(searcher, DEFAULT_SCHEDULER)


# SweepSpec's field metadata holds its Setting under this key.
SETTING = "setting"


@dataclass(frozen=True)
class Setting:
    """How users set one SweepSpec field; `tuning_service.core.settings` derives every form from it.

    The field's annotation is its type and its default is the default everywhere: the
    `run` and `submit` options, the schedule file's key, the argv a submission or a
    scheduled sweep forwards, and what the results database records.
    """

    flag: str | None = None  # the `run`/`submit` option; None: `run` takes it as its argument
    help: str | Callable[[], str] | None = None  # a callable for help listing registry names
    metavar: str | None = None
    path: Literal["file", "dir"] | None = None  # a path here: checked by click, relative to a schedule file
    load: Callable[[str], Any] | None = None  # turns the option's value into the field's (reads a file)
    minimum: float | None = None  # the least value accepted
    above: bool = False  # the value must be greater than ``minimum``, not equal to it
    file_key: str | None = ""  # "": the option's name with underscores; None: not in schedule files
    aliases: tuple[str, ...] = ()  # earlier schedule-file names, still read
    forwarded: bool = True  # `submit` and the scheduler pass it on to `run` on the cluster
    secret: bool = False  # may hold a password: never recorded, forwarded without it


def setting(default: Any = None, *, factory: Callable[[], Any] | None = None, **how: Any) -> Any:
    """A SweepSpec field with its Setting (``factory`` for a mutable default)."""
    metadata = {SETTING: Setting(**how)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def read_points_file(path: str | Path) -> tuple[dict[str, Any], ...]:
    """Configs to evaluate first, from a JSON or YAML file holding a list of mappings.

    A best-config export (a mapping with a ``config`` key, or a list of them) is
    accepted too, so `tuning-service export` output can seed the next sweep.
    """
    import yaml

    from tuning_service.core import yamlio

    try:
        data = yamlio.load_file(path)
    except OSError as exc:
        raise InputError(f"--warm-start {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--warm-start {str(path)!r} is not UTF-8 text: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise InputError(
            f"--warm-start {str(path)!r} is not valid JSON or YAML: {yamlio.describe(exc)}"
        ) from None
    items = data if isinstance(data, list) else [data]
    points = [item.get("config", item) if isinstance(item, Mapping) else item for item in items]
    if not points or not all(isinstance(p, Mapping) and p for p in points):
        raise InputError(
            f"--warm-start {str(path)!r} must hold a list of configs (mappings of parameter to value)"
        )
    return tuple(dict(p) for p in points)


def _searcher_help() -> str:
    from tuning_service.raytune.searchers import searcher_help

    return searcher_help()


def _scheduler_help() -> str:
    from tuning_service.raytune.searchers import scheduler_help

    return scheduler_help()


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs; immutable once `validate` has passed.

    The one declaration of a sweep's settings: each field's `setting` says how users
    set it (in this order, `run --help` lists them). ``max_epochs=None`` takes the job's
    default. ``address=None`` starts an embedded local Ray; ``auto``, ``HOST:PORT`` or
    ``ray://...`` join a cluster.
    """

    job: str = setting(DEFAULT_JOB, forwarded=False)  # the submission names the job itself
    searcher: str = setting("optuna", flag="--searcher", help=_searcher_help)
    # None: the scheduler the searcher works with (bohb for bohb), else asha; set on creation.
    scheduler: str | None = setting(None, flag="--scheduler", help=_scheduler_help)
    num_samples: int = setting(
        16, flag="--num-samples", minimum=1, help="Trials to run (grid runs each grid point once instead)."
    )
    max_epochs: int | None = setting(
        None, flag="--max-epochs", minimum=1, help="Epoch budget per trial [default: the job's]."
    )
    cpus_per_trial: float = setting(1.0, flag="--cpus-per-trial", minimum=0, above=True)
    gpus_per_trial: float = setting(
        0.0,
        flag="--gpus-per-trial",
        minimum=0,
        help="Fractions share a GPU, e.g. 0.25 for four trials per GPU.",
    )
    max_concurrent: int | None = setting(
        None,
        flag="--max-concurrent",
        minimum=1,
        aliases=("max_concurrent_trials",),
        help="Cap on trials running at once [default: as resources allow].",
    )
    # Configs the searcher runs first (warm start from earlier sweeps); points the job's
    # space no longer accepts are dropped with a log line when the searcher is built.
    # A schedule file's `warm_start` is how many earlier best configs to take instead.
    points_to_evaluate: tuple[dict[str, Any], ...] = setting(
        (),
        flag="--warm-start",
        path="file",
        load=read_points_file,
        file_key=None,
        forwarded=False,  # travels as a file with the submission
        help="JSON/YAML list of configs (or a best-config export) to evaluate before searching.",
    )
    # k-fold cross-validation instead of the job's validation split.
    cv_folds: int | None = setting(
        None,
        flag="--cv-folds",
        minimum=2,
        help="Score each trial by k-fold cross-validation over train+validation.",
    )
    # MLflow tracking URI; every trial is logged there too.
    mlflow: str | None = setting(
        None,
        flag="--mlflow",
        metavar="URI",
        help="Also log every trial to this MLflow tracking URI (needs the mlflow extra).",
    )
    epoch_budget: int | None = setting(
        None,
        flag="--epoch-budget",
        minimum=1,
        help="Stop the sweep once its trials have trained this many epochs in total.",
    )
    time_budget_s: float | None = setting(
        None,
        flag="--time-budget",
        minimum=0,
        above=True,
        aliases=("time_budget_s",),
        help="Stop the sweep after this many seconds.",
    )
    seed: int = setting(0, flag="--seed", minimum=0)
    storage: str = setting(
        DEFAULT_STORAGE,
        flag="--storage",
        forwarded=False,  # the submission's own: a path on the head
        help="Results root; each sweep writes to STORAGE/JOB/SWEEP_ID.",
    )
    address: str | None = setting(
        None,
        flag="--address",
        forwarded=False,  # the submission's own: the sweep joins the head's cluster
        help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT [default: embedded local Ray].",
    )
    searcher_options: dict[str, Any] = setting(
        factory=dict,
        flag="--searcher-option",
        metavar="KEY=VALUE",
        file_key="searcher_options",
        aliases=("searcher_option",),
        help="Searcher option (repeatable).",
    )
    scheduler_options: dict[str, Any] = setting(
        factory=dict,
        flag="--scheduler-option",
        metavar="KEY=VALUE",
        file_key="scheduler_options",
        aliases=("scheduler_option",),
        help="Scheduler option (repeatable).",
    )
    # Checkpoint every N epochs; None: every epoch where the scheduler pauses trials (Hyperband),
    # else every CHECKPOINT_EVERY epochs (checkpoints then serve only retries and resumes).
    checkpoint_frequency: int | None = setting(
        None,
        flag="--checkpoint-frequency",
        minimum=1,
        help="Checkpoint every N epochs [default: 1 for hyperband, which pauses trials; pbt's "
        "perturbation_interval; else 5].",
    )
    # Restarts of a trial whose worker process or node died, each from its last checkpoint.
    # Errors raised by the model code are recorded, never retried.
    max_failures: int = setting(
        2,
        flag="--max-failures",
        minimum=0,
        help="Restarts of a trial whose worker process or node died, from its last checkpoint "
        "(errors raised by the model are recorded, not retried).",
    )
    data_limit: int | None = setting(
        None, flag="--data-limit", minimum=1, help="Use at most this many training rows (quick checks)."
    )
    # Results database URL; None: $TUNING_SERVICE_DB, else <storage>/tuning.db (SQLite).
    db: str | None = setting(
        None,
        flag="--db",
        metavar="URL",
        aliases=("database",),
        secret=True,
        help="Results database: sqlite:///PATH or postgresql://USER@HOST/DB "
        "[default: $TUNING_SERVICE_DB, else STORAGE/tuning.db].",
    )
    data_dir: str | None = setting(None, flag="--data-dir", path="dir", help="Local dataset cache directory.")
    # ``NAME:max|min`` each; two or more make a multi-objective sweep whose result is a Pareto
    # front. The first is the sweep's metric (the job's when none is given). See `objectives`.
    objectives: tuple[str, ...] = setting(
        (),
        flag="--objective",
        metavar="NAME:max|min",
        file_key="objectives",
        aliases=("objective",),
        help="An objective (repeatable; two or more: a multi-objective sweep with a Pareto front). The first "
        "is the sweep's metric; model costs params and latency_ms may follow [default: the job's metric].",
    )
    # ``NAME<=BOUND`` (or >=, <, >) on model costs; trials that break one are recorded infeasible.
    constraints: tuple[str, ...] = setting(
        (),
        flag="--constraint",
        metavar="NAME<=BOUND",
        file_key="constraints",
        aliases=("constraint",),
        help="A limit on a model cost, e.g. params<=200000 (ops <=, >=, <, >; repeatable): trials that break "
        "it are recorded infeasible and never best.",
    )

    # Which front member best_config.json holds (see `objectives.parse_pick`); checked in `runner.prepare`.
    pick: str | None = setting(
        None,
        flag="--pick",
        metavar="RULE",
        help="A multi-objective sweep: the Pareto-front member best_config.json holds, e.g. "
        "'val_accuracy:max where params<=100000' [default: the first objective's best].",
    )

    # The new sweep's id, chosen by its caller: `submit` and a scheduled submission name the
    # sweep they start, then read its result from the database it records in.
    sweep_id: str | None = setting(
        None,
        flag="--sweep-id",
        metavar="ID",
        help=f"The new sweep's id, {SWEEP_ID_FORM} [default: made from the start time].",
        file_key=None,  # one id would name every run of a scheduled sweep
    )

    def __post_init__(self) -> None:
        # A spec read back from its JSON record holds lists.
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        if self.scheduler is None:
            object.__setattr__(self, "scheduler", default_scheduler(self.searcher))

    @property
    def embedded(self) -> bool:
        """Whether the sweep starts its own local Ray (``address`` None or ``local``), not joins a cluster."""
        return self.address in (None, "local")

    @property
    def scheduler_name(self) -> str:
        """``scheduler`` as the sweep runs it: `__post_init__` has replaced None with the default."""
        if self.scheduler is None:  # only a subclass that skipped __post_init__ could get here
            raise TypeError("SweepSpec.scheduler was not set on creation")
        return self.scheduler

    def replace(self, **changes: Any) -> SweepSpec:
        return replace(self, **changes)

    def validate(self) -> SweepSpec:
        """Check every field; raise InputError naming the first problem. Imports no Ray."""
        for item in fields(self):
            how: Setting | None = item.metadata.get(SETTING)
            value = getattr(self, item.name)
            if how is not None and how.flag and how.minimum is not None and value is not None:
                if value_type(item.name) is int:  # numbers have their own checks below
                    _int_at_least(how.flag, value, int(how.minimum))
        _resource("cpus-per-trial", self.cpus_per_trial, minimum_exclusive=True)
        _resource("gpus-per-trial", self.gpus_per_trial, minimum_exclusive=False)
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise InputError(
                f"--gpus-per-trial: a trial needs a fraction of one GPU or a whole number of GPUs, "
                f"got {self.gpus_per_trial}"
            )
        if self.time_budget_s is not None and not (
            _is_number(self.time_budget_s) and self.time_budget_s > 0 and math.isfinite(self.time_budget_s)
        ):
            raise InputError(f"--time-budget must be a number of seconds > 0, got {self.time_budget_s!r}")
        if not all(isinstance(p, dict) for p in self.points_to_evaluate):
            raise InputError(
                f"points_to_evaluate must be configs (mappings), got {self.points_to_evaluate!r}"
            )
        from tuning_service.core.objectives import check_constraints, parse_objective

        for objective in self.objectives:
            parse_objective(objective)  # the names are checked against the job in `runner.prepare`
        check_constraints(self.constraints)
        if self.sweep_id is not None and not (
            isinstance(self.sweep_id, str) and SWEEP_ID.fullmatch(self.sweep_id)
        ):
            raise InputError(f"--sweep-id must be {SWEEP_ID_FORM}, got {self.sweep_id!r}")
        if self.address is not None and not _ADDRESS.match(self.address):
            raise InputError(f"--address must be {ADDRESS_FORMS}, got {self.address!r}")
        if self.mlflow is not None:
            import importlib.util

            if importlib.util.find_spec("mlflow") is None:
                raise InputError("--mlflow needs MLflow installed: pip install 'tuning-service[mlflow]'")
            if not self.mlflow.strip():
                raise InputError(
                    "--mlflow needs a tracking URI, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000"
                )
            _refuse_password("--mlflow", self.mlflow, MLFLOW_PASSWORD_HELP)
        check_creatable(self.storage)
        if self.db is not None:
            from tuning_service.core.dburl import parse_url

            try:
                parse_url(self.db)
            except InputError as exc:
                raise InputError(f"--db: {exc}") from None
        return self


@functools.cache
def value_type(name: str) -> type:
    """The type of SweepSpec field ``name``'s values, None left out: ``int | None`` -> int."""
    hint = typing.get_type_hints(SweepSpec)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) and len(args) == 1:
        hint = args[0]
    origin = typing.get_origin(hint)
    return origin if isinstance(origin, type) else hint


# Where MLflow finds credentials without a URI holding them.
MLFLOW_PASSWORD_HELP = (
    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD for an MLflow server, "
    "PGPASSWORD or ~/.pgpass for a PostgreSQL store"
)


def _refuse_password(flag: str, uri: str, where: str) -> None:
    """A URI kept with the sweep (its record, Tune's state, a submission) must hold no password."""
    from tuning_service.core.credentials import has_password, hide

    if has_password(uri):
        raise InputError(
            f"{flag} {hide(uri)!r} holds a password, which would be stored with the sweep and shown on "
            f"command lines; remove it from the URI and give it in {where}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# The largest whole number a setting takes: what a 32-bit integer column of the results database
# (PostgreSQL's INTEGER) holds. More epochs or trials than that is a typo, not a sweep.
INT_MAX = 2**31 - 1


def _int_at_least(flag: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= INT_MAX:
        raise InputError(f"{flag} must be an integer from {minimum} to {INT_MAX}, got {value!r}")


def _resource(flag: str, value: Any, *, minimum_exclusive: bool) -> None:
    bad = not _is_number(value) or not math.isfinite(value) or value < 0 or (minimum_exclusive and value == 0)
    if bad:
        bound = "> 0" if minimum_exclusive else ">= 0"
        raise InputError(f"--{flag} must be a number {bound} (fractions allowed), got {value!r}")


# The longest file or folder name Linux filesystems take (bytes); a longer one fails at mkdir.
NAME_MAX = 255


def _short(text: str, keep: int = 80) -> str:
    return text if len(text) <= keep else text[:keep] + "..."


def check_creatable(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` is a directory or could be created, without creating anything."""
    target = Path(os.path.expanduser(path)).absolute()
    try:
        too_long = any(len(os.fsencode(part)) > NAME_MAX for part in target.parts)
        unnamable = "\0" in str(target)
    except UnicodeEncodeError:  # a lone surrogate: no file name can hold it
        too_long, unnamable = False, True
    if too_long or unnamable:
        why = (
            f"a folder name is longer than {NAME_MAX} bytes"
            if too_long
            else "it holds characters no file name can (a NUL or a lone surrogate)"
        )
        raise InputError(f"--storage {_short(str(path))!r} cannot be created: {why}")
    probe = target
    while not os.path.exists(probe):
        probe = probe.parent
    if not os.path.isdir(probe):
        raise InputError(
            f"--storage {str(path)!r} cannot be created: {str(probe)!r} is a file, not a directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"--storage {str(path)!r} cannot be created: {str(probe)!r} is not writable")
    return target
