"""SweepSpec: one sweep's request, validated in full before Ray starts."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tuning_service.errors import InputError

DEFAULT_JOB = "digits"
DEFAULT_STORAGE = "tuning-results"
ADDRESS_FORMS = "'auto', HOST:PORT or ray://HOST:PORT"
_ADDRESS = re.compile(r"^(auto|local|ray://[^\s:/]+(:\d+)?|[^\s:/]+:\d+)$")


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs; immutable once `validate` has passed.

    ``max_epochs=None`` takes the job's default. ``address=None`` starts an
    embedded local Ray; ``auto``, ``HOST:PORT`` or ``ray://...`` join a cluster.
    """

    job: str = DEFAULT_JOB
    searcher: str = "optuna"
    # None: the scheduler the searcher works with (bohb for bohb), else asha; set on creation.
    scheduler: str | None = None
    num_samples: int = 16
    max_epochs: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    time_budget_s: float | None = None
    epoch_budget: int | None = None
    cv_folds: int | None = None  # k-fold cross-validation instead of the job's validation split
    mlflow: str | None = None  # MLflow tracking URI; every trial is logged there too
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    address: str | None = None
    searcher_options: dict[str, Any] = field(default_factory=dict)
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    # Checkpoint every N epochs; None: every epoch where the scheduler pauses trials (Hyperband),
    # else every CHECKPOINT_EVERY epochs (checkpoints then serve only retries and resumes).
    checkpoint_frequency: int | None = None
    # Restarts of a trial whose worker process or node died, each from its last checkpoint.
    # Errors raised by the model code are recorded, never retried.
    max_failures: int = 2
    data_limit: int | None = None
    data_dir: str | None = None
    # Results database URL; None: $TUNING_SERVICE_DB, else <storage>/tuning.db (SQLite).
    db: str | None = None
    # Configs the searcher runs first (warm start from earlier sweeps); points the job's
    # space no longer accepts are dropped with a log line when the searcher is built.
    points_to_evaluate: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.scheduler is None:
            from tuning_service.searchers import default_scheduler

            object.__setattr__(self, "scheduler", default_scheduler(self.searcher))

    def replace(self, **changes: Any) -> SweepSpec:
        return replace(self, **changes)

    def validate(self) -> SweepSpec:
        """Check every field; raise InputError naming the first problem. Imports no Ray."""
        _positive_int("num-samples", self.num_samples)
        if self.max_epochs is not None:
            _positive_int("max-epochs", self.max_epochs)
        if self.checkpoint_frequency is not None:
            _positive_int("checkpoint-frequency", self.checkpoint_frequency)
        if (
            not isinstance(self.max_failures, int)
            or isinstance(self.max_failures, bool)
            or self.max_failures < 0
        ):
            raise InputError(f"--max-failures must be an integer >= 0, got {self.max_failures!r}")
        if self.max_concurrent is not None:
            _positive_int("max-concurrent", self.max_concurrent)
        if self.cv_folds is not None and (
            not isinstance(self.cv_folds, int) or isinstance(self.cv_folds, bool) or self.cv_folds < 2
        ):
            raise InputError(f"--cv-folds must be an integer >= 2, got {self.cv_folds!r}")
        if self.epoch_budget is not None:
            _positive_int("epoch-budget", self.epoch_budget)
        if self.data_limit is not None:
            _positive_int("data-limit", self.data_limit)
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
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if not all(isinstance(p, dict) for p in self.points_to_evaluate):
            raise InputError(
                f"points_to_evaluate must be configs (mappings), got {self.points_to_evaluate!r}"
            )
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
            from tuning_service.store.engine import parse_url

            try:
                parse_url(self.db)
            except InputError as exc:
                raise InputError(f"--db: {exc}") from None
        return self


# Where MLflow finds credentials without a URI holding them.
MLFLOW_PASSWORD_HELP = (
    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD for an MLflow server, "
    "PGPASSWORD or ~/.pgpass for a PostgreSQL store"
)


def _refuse_password(flag: str, uri: str, where: str) -> None:
    """A URI kept with the sweep (its record, Tune's state, a submission) must hold no password."""
    from tuning_service.credentials import has_password, hide

    if has_password(uri):
        raise InputError(
            f"{flag} {hide(uri)!r} holds a password, which would be stored with the sweep and shown on "
            f"command lines; remove it from the URI and give it in {where}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_int(flag: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"--{flag} must be an integer >= 1, got {value!r}")


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
