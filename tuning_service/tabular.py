"""The job API: CSV tables (`TableSpec`, `read_csv`, `to_dataset`) of `tuning_service.data.tabular`."""

from __future__ import annotations

from tuning_service.data.tabular import (
    ENCODINGS,
    MAX_CATEGORIES,
    MAX_CLASSES,
    NUMERIC_SHARE,
    TASKS,
    Encoding,
    TableSpec,
    blank_to_nan,
    check_columns,
    column_kinds,
    encode_target,
    infer_task,
    read_csv,
    read_csv_head,
    to_dataset,
    to_numeric,
)

__all__ = [
    "ENCODINGS",
    "MAX_CATEGORIES",
    "MAX_CLASSES",
    "NUMERIC_SHARE",
    "TASKS",
    "Encoding",
    "TableSpec",
    "blank_to_nan",
    "check_columns",
    "column_kinds",
    "encode_target",
    "infer_task",
    "read_csv",
    "read_csv_head",
    "to_dataset",
    "to_numeric",
]
