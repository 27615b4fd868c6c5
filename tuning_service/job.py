"""The job API: the job interface (`Job`, `Dataset`, `InputSpec`) of `tuning_service.core.job`."""

from __future__ import annotations

from tuning_service.core.job import (
    FOLDER_NAME_RULE,
    MODES,
    BuildModel,
    Dataset,
    InputSpec,
    Job,
    LoadData,
    Mode,
    Task,
    is_folder_name,
)

__all__ = [
    "FOLDER_NAME_RULE",
    "MODES",
    "BuildModel",
    "Dataset",
    "InputSpec",
    "Job",
    "LoadData",
    "Mode",
    "Task",
    "is_folder_name",
]
