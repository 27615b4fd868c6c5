"""The job interface: what a user tunes (data, model family, search space, metric)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tuning_service.core.converted import Converted
from tuning_service.core.errors import InputError
from tuning_service.core.space import Space

if TYPE_CHECKING:
    import keras
    import numpy as np  # annotations only: commands that read results never load NumPy

Mode = Literal["max", "min"]
Task = Literal["binary", "multiclass", "regression"]
MODES: tuple[str, ...] = ("max", "min")
# Job and schedule sweep names become one folder of the results root: no separator, no "..",
# nothing that starts like an option or a hidden file.
_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
FOLDER_NAME_RULE = (
    "up to 100 letters, digits, '_', '-' or '.', starting with a letter or digit (it names a results folder)"
)


def is_folder_name(value: Any) -> bool:
    """Whether ``value`` is safe as one folder name under the results root."""
    return isinstance(value, str) and _FOLDER_NAME.fullmatch(value) is not None


@dataclass(frozen=True)
class InputSpec:
    """What a model builder needs to know about the data, without the data."""

    shape: tuple[int, ...]
    task: Task
    num_classes: int | None = None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test arrays; preprocessing was fitted on train only."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    num_classes: int | None = None

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(tuple(self.x_train.shape[1:]), self.task, self.num_classes)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)}


LoadData = Callable[..., Dataset]
BuildModel = Callable[[Mapping[str, Any], InputSpec], "keras.Model"]


@dataclass(frozen=True)
class Job:
    """A tunable problem. No Ray and no training loop here: the trainable owns those.

    ``load_data(limit=None, data_dir=None)`` returns a `Dataset`; ``limit`` caps the
    number of training rows (tests), ``data_dir`` points at a local cache.
    ``build_model(config, input_spec)`` returns a compiled Keras model whose
    compiled metrics include the job's ``metric`` (without its ``val_`` prefix).
    """

    name: str
    description: str
    load_data: LoadData
    build_model: BuildModel
    # Required (no default); a plain mapping of parameter names, the way job modules write
    # it, becomes a Space. Declared after the other required fields: the type checker takes
    # the descriptor's assignment for a default.
    space: Converted[Space | Mapping[str, Any], Space] = Converted(lambda job, value: job._as_space(value))
    metric: str = "val_accuracy"
    mode: Mode = "max"
    max_epochs: int = 20
    batch_size: int = 32
    # Metric value reported for a diverged trial: finite, so every searcher can rank it.
    worst: float | None = None
    # k-fold cross-validation over train+validation instead of one split (small tables).
    cv_folds: int | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # What its sweeps optimise and the limits they keep, unless `run` names its own: ``NAME:max|min``
    # each (the first is the metric) and ``NAME<=BOUND`` on model costs (see `objectives`).
    objectives: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()

    def _as_space(self, value: Space | Mapping[str, Any]) -> Space:
        if isinstance(value, Space):
            return value
        self._check_name()  # a bad name is reported first, as before the space is read
        return Space.from_dict(value, where=f"job {self.name!r}")

    def _check_name(self) -> None:
        if not is_folder_name(self.name):
            raise InputError(f"job name {self.name!r} must be {FOLDER_NAME_RULE}")

    def __post_init__(self) -> None:
        self._check_name()
        if self.mode not in MODES:
            raise InputError(f"job {self.name!r}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not isinstance(self.max_epochs, int) or self.max_epochs < 1:
            raise InputError(
                f"job {self.name!r}: max_epochs must be an integer >= 1, got {self.max_epochs!r}"
            )

        from tuning_service.core.objectives import check_constraints, check_objectives

        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        try:
            check_objectives(self.objectives, self.metric, flag="objectives:")
            check_constraints(self.constraints, flag="constraints:")
        except InputError as exc:
            raise InputError(f"job {self.name!r}: {exc}") from None
        if self.cv_folds is not None and (
            not isinstance(self.cv_folds, int) or isinstance(self.cv_folds, bool) or self.cv_folds < 2
        ):
            raise InputError(f"job {self.name!r}: cv_folds must be an integer >= 2, got {self.cv_folds!r}")

    @property
    def worst_value(self) -> float:
        if self.worst is not None:
            return float(self.worst)
        return -1e9 if self.mode == "max" else 1e9

    def model_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration a model is built from: defaults, then active sampled values."""
        return {**self.defaults, **self.space.effective(config)}
