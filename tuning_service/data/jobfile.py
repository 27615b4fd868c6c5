"""Jobs from a YAML, TOML or JSON file over a CSV: a tabular job with no Python."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tuning_service.core import yamlio
from tuning_service.core.errors import InputError
from tuning_service.core.job import FOLDER_NAME_RULE, MODES, Dataset, Job, is_folder_name
from tuning_service.core.objectives import check_constraints, check_objectives
from tuning_service.core.registry import did_you_mean
from tuning_service.core.space import Choice, Float, Int, Space
from tuning_service.data.tabular import (
    ENCODINGS,
    TASKS,
    TableSpec,
    blank_to_nan,
    check_columns,
    infer_task,
    read_csv,
    read_csv_head,
    to_dataset,
)
from tuning_service.training.models import build_mlp, check_config_keys

SUFFIXES = (".yaml", ".yml", ".toml", ".json")

# What a job file gets when it names no space: the tutorials' usual first sweep.
DEFAULT_SPACE = {
    "learning_rate": Float(1e-4, 1e-2, log=True),
    "units": Int(16, 256, log=True),
    "layers": Int(1, 3),
    "activation": Choice(("relu", "elu", "tanh")),
    "batch_size": Choice((32, 64, 128)),
}
METRICS = {
    "binary": ("val_accuracy", "val_loss"),
    "multiclass": ("val_accuracy", "val_loss"),
    "regression": ("val_loss", "val_mae"),
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _job_name(value: Any) -> str | None:
    """A name that is safe as a folder of the results root."""
    return value if is_folder_name(value) else None


def _separator(value: Any) -> str | None:
    """pandas reads a separator longer than one character as a regular expression: it must compile."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) > 1:
        try:
            re.compile(value)
        except re.error:
            return None
    return value


def _names(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    return None


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _share(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1
    return float(value) if ok and math.isfinite(value) else None


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda value: value if value in choices else None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


# key -> (converter returning None for a wrong value, what a right value looks like)
SCHEMA: dict[str, tuple[Callable[[Any], Any], str]] = {
    "name": (_job_name, FOLDER_NAME_RULE),
    "description": (_text, "a non-empty string"),
    "csv": (_text, "a path to a CSV file, relative to the job file"),
    "target": (_text, "a column name"),
    "separator": (_separator, "one character such as ',' or ';', or a regular expression such as '\\s+'"),
    "ignore": (_names, "a list of column names"),
    "numeric": (_names, "a list of column names"),
    "zero_is_missing": (_names, "a list of column names"),
    "task": (_one_of(TASKS), f"one of {', '.join(TASKS)}"),
    "encoding": (_one_of(ENCODINGS), f"one of {', '.join(ENCODINGS)}"),
    "metric": (_text, "a metric name such as val_accuracy"),
    "mode": (_one_of(MODES), f"one of {', '.join(MODES)}"),
    "max_epochs": (_positive_int, "an integer >= 1"),
    "batch_size": (_positive_int, "an integer >= 1"),
    "cv_folds": (_positive_int, "an integer >= 2 (k-fold cross-validation over train+validation)"),
    "test_size": (_share, "a number between 0 and 1"),
    "validation_size": (_share, "a number between 0 and 1"),
    "defaults": (_mapping, "a mapping of model settings"),
    "space": (_mapping, "a mapping of parameter names"),
    "objectives": (_names, "a list of NAME:max or NAME:min, e.g. [val_accuracy:max, params:min]"),
    "constraints": (_names, "a list of limits on model costs, e.g. ['params<=200000']"),
}
REQUIRED = ("csv", "target")


@dataclass(frozen=True)
class CsvData:
    """A job file's ``load_data``: picklable, so Ray ships it by reference to this module."""

    path: Path
    table: TableSpec
    separator: str
    where: str

    def __call__(self, *, limit: int | None = None, data_dir: Any = None, seed: int = 0) -> Dataset:
        frame = read_csv(self.path, sep=self.separator, where=self.where)
        return to_dataset(frame, self.table, limit=limit, seed=seed, where=self.where)


def read_job_file(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; TOML by suffix, YAML (and JSON) otherwise."""
    where = str(path)
    if not os.path.isfile(path):
        raise InputError(f"job file {where!r} does not exist")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            data = yamlio.load_file(path)
    except OSError as exc:
        raise InputError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise InputError(f"{where}: not valid {path.suffix[1:].upper()}: {_one_line(exc)}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise InputError(f"{where}: not valid TOML: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {yamlio.describe(exc)}") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of job settings, got {type(data).__name__}")
    return dict(data)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_keys(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Refuse unknown keys and wrong types, naming the key; return the converted values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SCHEMA:
            accepted = sorted(SCHEMA)
            raise InputError(
                f"{where}: unknown key {key!r} (accepted: {', '.join(accepted)}){did_you_mean(str(key), accepted)}"
            )
        convert, expected = SCHEMA[key]
        converted = convert(value)
        if converted is None:
            raise InputError(f"{where}: key {key!r} must be {expected}, got {value!r}")
        out[key] = converted
    for key in REQUIRED:
        if key not in out:
            raise InputError(f"{where}: missing required key {key!r} ({SCHEMA[key][1]})")
    return out


def load_job_file(path: str | Path) -> Job:
    """Build a Job from a job file; the CSV's header and target are checked here, before Ray."""
    path = Path(path)
    where = str(path)
    settings = check_keys(read_job_file(path), where)
    csv = Path(os.path.expanduser(settings["csv"]))
    csv = csv if csv.is_absolute() else (path.parent / csv)
    separator = settings.get("separator", ",")
    table = TableSpec(
        target=settings["target"],
        task=settings.get("task"),
        ignore=settings.get("ignore", ()),
        numeric=settings.get("numeric", ()),
        zero_is_missing=settings.get("zero_is_missing", ()),
        encoding=settings.get("encoding", "onehot"),
        test_size=settings.get("test_size", 0.2),
        val_size=settings.get("validation_size", 0.2),
    )
    table = _with_task(csv.absolute(), separator, table, where)
    metric = settings.get("metric", METRICS[table.task][0])  # type: ignore[index]
    accepted = METRICS[table.task] + tuple(m.removeprefix("val_") for m in METRICS[table.task])  # type: ignore[index]
    if metric not in accepted:
        raise InputError(
            f"{where}: key 'metric': a {table.task} job reports {', '.join(accepted)}, got {metric!r}"
            f"{did_you_mean(metric, list(accepted))}"
        )
    try:
        check_objectives(settings.get("objectives", ()), metric, flag="key 'objectives':")
        check_constraints(settings.get("constraints", ()), flag="key 'constraints':")
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    space = Space.from_dict(settings.get("space", DEFAULT_SPACE), where=f"{where}: space")
    defaults = dict(settings.get("defaults", {}))
    check_config_keys(list(space) + list(defaults), where=where)
    name = settings.get("name", path.stem)
    if not is_folder_name(name):
        raise InputError(
            f"{where}: the file's name {name!r} cannot name the results folder; add a key 'name': {FOLDER_NAME_RULE}"
        )
    return Job(
        name=name,
        description=settings.get("description", f"{csv.name}: predict {table.target} ({table.task})"),
        space=space,
        load_data=CsvData(csv.absolute(), table, separator, where),
        build_model=build_mlp,
        metric=metric,
        mode=settings.get("mode", "max" if metric.endswith("accuracy") else "min"),
        max_epochs=settings.get("max_epochs", 20),
        batch_size=settings.get("batch_size", 32),
        defaults=defaults,
        cv_folds=settings.get("cv_folds"),
        objectives=settings.get("objectives", ()),
        constraints=settings.get("constraints", ()),
    )


def _with_task(csv: Path, separator: str, table: TableSpec, where: str) -> TableSpec:
    """Check the CSV's header and target column; infer the task when the file gives none."""
    import pandas as pd

    head = read_csv_head(csv, sep=separator, where=where)
    if head.shape[1] < 2:
        # Re-read in full for the precise message (empty, no rows, or one column).
        read_csv(csv, sep=separator, where=where)
    check_columns(head, table, where=where)
    try:
        target = pd.read_csv(csv, sep=separator, usecols=[table.target])[table.target]
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{where}: {str(csv)!r} is not a CSV table ({_one_line(exc)})") from None
    present = blank_to_nan(target).dropna()
    if present.empty:
        raise InputError(f"{where}: target column {table.target!r} has no values")
    task = table.task or infer_task(present)
    if task != "regression" and present.nunique() < 2:
        raise InputError(
            f"{where}: target column {table.target!r} has only one class ({present.iloc[0]!r} in all "
            f"{len(present)} rows); a classifier needs at least two"
        )
    return replace(table, task=task)
