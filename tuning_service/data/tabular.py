"""CSV tables to train / validation / test arrays: checks, column typing, splits, preprocessing."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tuning_service.core.errors import InputError
from tuning_service.core.job import Dataset, Task
from tuning_service.core.registry import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Encoding = Literal["onehot", "ordinal"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
ENCODINGS: tuple[str, ...] = ("onehot", "ordinal")
# A text column whose values are at least this share numbers is a numeric column with typos.
NUMERIC_SHARE = 0.9
# An integer target with at most this many distinct values is a class label, not a quantity.
MAX_CLASSES = 20
# One-hot columns per categorical feature; rarer categories share one "infrequent" column.
MAX_CATEGORIES = 50


@dataclass(frozen=True)
class TableSpec:
    """How to turn one table into a `Dataset`.

    Args:
        target: the column to predict.
        task: binary, multiclass or regression; None infers it from the target.
        ignore: columns that are not features (ids, leaks).
        numeric: text columns that must be numbers; blanks become missing values.
        zero_is_missing: numeric columns where 0 stands for "not measured".
        drop_missing: rows missing a value in these columns are dropped before splitting.
        encoding: categorical features as one-hot columns or as ordinal codes.
        test_size, val_size: test share of all rows; validation share of the rest.
    """

    target: str
    task: Task | None = None
    ignore: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    zero_is_missing: tuple[str, ...] = ()
    drop_missing: tuple[str, ...] = ()
    encoding: Encoding = "onehot"
    test_size: float = 0.2
    val_size: float = 0.2


def read_csv(path: str | Path, *, sep: str = ",", where: str | None = None) -> pd.DataFrame:
    """Read a whole CSV, refusing anything that is not a table with a target and a feature."""
    frame = _read(Path(path), sep, where, nrows=None)
    at = f"{where}: " if where else ""
    if frame.shape[1] < 2:
        raise InputError(
            f"{at}{str(path)!r} is not a table: found {frame.shape[1]} column with separator "
            f"{sep!r}; a job needs a target and at least one feature column"
        )
    if frame.empty:
        raise InputError(f"{at}CSV file {str(path)!r} has a header but no rows")
    return frame


def read_csv_head(path: str | Path, *, sep: str = ",", where: str | None = None) -> pd.DataFrame:
    """The first rows of a CSV: a cheap look at its header before a sweep starts."""
    return _read(Path(path), sep, where, nrows=5)


def _read(path: Path, sep: str, where: str | None, nrows: int | None) -> pd.DataFrame:
    """pandas' reader with its failures turned into one-line input errors."""
    import pandas as pd

    at = f"{where}: " if where else ""
    if not os.path.isfile(path):
        raise InputError(f"{at}CSV file {str(path)!r} does not exist")
    try:
        return pd.read_csv(path, sep=sep, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise InputError(f"{at}CSV file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, re.error) as exc:  # re: a regex separator
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{at}{str(path)!r} is not a CSV table ({reason})") from None


def check_columns(frame: pd.DataFrame, spec: TableSpec, *, where: str) -> None:
    """Every column the spec names must exist; the target must not be ignored."""
    columns = [str(c) for c in frame.columns]
    listed = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    if spec.target not in columns:
        raise InputError(
            f"{where}: target column {spec.target!r} is not in the CSV (columns: {listed})"
            f"{did_you_mean(spec.target, columns)}"
        )
    if spec.target in spec.ignore:
        raise InputError(f"{where}: target column {spec.target!r} is also listed in ignore")
    for key in ("ignore", "numeric", "zero_is_missing", "drop_missing"):
        missing = [c for c in getattr(spec, key) if c not in columns]
        if missing:
            raise InputError(
                f"{where}: {key} names column {missing[0]!r}, which is not in the CSV (columns: {listed})"
            )
    if len([c for c in columns if c != spec.target and c not in spec.ignore]) == 0:
        raise InputError(f"{where}: no feature columns left after ignoring {list(spec.ignore)}")


def blank_to_nan(series: pd.Series) -> pd.Series:
    """Empty or whitespace-only text is a missing value, as in Telco's `TotalCharges`."""
    if series.dtype != object and str(series.dtype) not in ("string", "str"):
        return series
    text = series.astype("string").str.strip()
    return series.where(text.notna() & (text != ""), np.nan)


def to_numeric(series: pd.Series, *, where: str) -> pd.Series:
    """Numbers from a text column: blanks become missing, anything else non-numeric is refused."""
    import pandas as pd

    series = blank_to_nan(series)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & numbers.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{where}: column {series.name!r} is numeric but row {row + 2} holds {series.iloc[row]!r} "
            f"({int(bad.sum())} such value{'s' if bad.sum() > 1 else ''}); fix the data or ignore the column"
        )
    return numbers.astype("float64")


def column_kinds(
    frame: pd.DataFrame, spec: TableSpec, *, where: str
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Split the feature columns into numeric and categorical, converting text numbers.

    A text column is numeric when every non-blank value parses as a number, and an
    error when almost all do (a typo in a numeric column must not silently turn the
    whole column into categories).
    """
    import pandas as pd

    frame = frame.copy()
    numeric, categorical = [], []
    for name in frame.columns:
        if name == spec.target or name in spec.ignore:
            continue
        column = frame[name]
        if name in spec.numeric:
            frame[name] = to_numeric(column, where=where)
            numeric.append(name)
        elif pd.api.types.is_bool_dtype(column):
            frame[name] = column.astype("float64")
            numeric.append(name)
        elif pd.api.types.is_numeric_dtype(column):
            numeric.append(name)
        else:
            present = blank_to_nan(column).dropna()
            parsed = pd.to_numeric(present, errors="coerce").notna()
            if len(present) and parsed.all():
                frame[name] = to_numeric(column, where=where)
                numeric.append(name)
            elif len(present) and parsed.mean() >= NUMERIC_SHARE:
                to_numeric(column, where=where)  # raises, naming the first bad row
            else:
                frame[name] = blank_to_nan(column).astype("object")
                categorical.append(name)
    return frame, numeric, categorical


def infer_task(target: pd.Series) -> Task:
    """Text or few integer values: classification; anything else numeric: regression."""
    import pandas as pd

    values = target.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "binary" if values.nunique() <= 2 else "multiclass"
    integral = bool(np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0))
    if integral and values.nunique() <= MAX_CLASSES:
        return "binary" if values.nunique() <= 2 else "multiclass"
    return "regression"


def encode_target(target: pd.Series, task: Task, *, where: str) -> tuple[np.ndarray, int | None]:
    """Class labels to 0..K-1 (sorted, so No/Yes becomes 0/1), or floats for regression."""
    import pandas as pd

    if task == "regression":
        if not pd.api.types.is_numeric_dtype(target):
            values = to_numeric(target, where=where)
        else:
            values = target.astype("float64")
        return values.to_numpy(dtype="float32"), None
    classes = sorted(target.unique(), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise InputError(
            f"{where}: target column {target.name!r} has only one class ({classes[0]!r} in all "
            f"{len(target)} rows); a classifier needs at least two"
        )
    if task == "binary" and len(classes) > 2:
        raise InputError(
            f"{where}: task is binary but target column {target.name!r} has {len(classes)} classes; "
            "use task: multiclass"
        )
    codes = target.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype="int64")
    return codes, len(classes)


def _preprocessor(numeric: list[str], categorical: list[str], encoding: Encoding) -> Any:
    """Median-impute and scale numbers; encode categories (missing is a category of its own)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    fill = SimpleImputer(strategy="constant", fill_value="(missing)")
    if encoding == "ordinal":
        # The Telco tutorial's encoding: one code per category, scaled like every column.
        encoder = make_pipeline(
            fill, OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), StandardScaler()
        )
    else:
        encoder = make_pipeline(
            fill,
            OneHotEncoder(
                handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False
            ),
        )
    numbers = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    return ColumnTransformer([("numeric", numbers, numeric), ("categorical", encoder, categorical)])


def _split(n: int, y: np.ndarray, size: float, *, stratify: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (rest, held out); stratified when every class can appear on both sides."""
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    strata = y if stratify and np.min(np.unique(y, return_counts=True)[1]) >= 2 else None
    rest, held = train_test_split(index, test_size=size, stratify=strata, random_state=seed)
    return rest, held


def to_dataset(
    frame: pd.DataFrame, spec: TableSpec, *, limit: int | None = None, seed: int = 0, where: str
) -> Dataset:
    """Check, split and preprocess a table; every statistic is fitted on the train split."""
    check_columns(frame, spec, where=where)
    frame = frame.copy()
    frame[spec.target] = blank_to_nan(frame[spec.target])
    missing_target = int(frame[spec.target].isna().sum())
    if missing_target:
        log.warning("%s: dropping %d rows without a %s value", where, missing_target, spec.target)
        frame = frame[frame[spec.target].notna()]
    frame, numeric, categorical = column_kinds(frame, spec, where=where)
    for name in spec.zero_is_missing:
        frame[name] = frame[name].mask(frame[name] == 0)
    if spec.drop_missing:
        before = len(frame)
        frame = frame.dropna(subset=list(spec.drop_missing))
        log.info("%s: dropped %d rows missing %s", where, before - len(frame), ", ".join(spec.drop_missing))
    if len(frame) < 10:
        raise InputError(
            f"{where}: only {len(frame)} usable rows; a train/validation/test split needs at least 10"
        )
    task = spec.task or infer_task(frame[spec.target])
    y, num_classes = encode_target(frame[spec.target], task, where=where)
    classify = task != "regression"
    rest, test = _split(len(frame), y, spec.test_size, stratify=classify, seed=seed)
    train_pos, val_pos = _split(len(rest), y[rest], spec.val_size, stratify=classify, seed=seed)
    train, val = rest[train_pos], rest[val_pos]
    if limit is not None:
        train = train[:limit]
    features = frame[numeric + categorical]
    pre = _preprocessor(numeric, categorical, spec.encoding)
    x_train = pre.fit_transform(features.iloc[train]).astype("float32")

    def transform(rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = pre.transform(features.iloc[rows]).astype("float32")
        return out

    y = y.astype("float32") if task == "binary" else y
    return Dataset(
        x_train,
        y[train],
        transform(val),
        y[val],
        transform(test),
        y[test],
        task=task,
        num_classes=num_classes if task == "multiclass" else None,
    )
