"""tuning-service: distributed hyperparameter search for Keras models on Ray Tune."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuning_service.core.job import Dataset, InputSpec, Job
from tuning_service.core.space import Choice, Fixed, Float, Int, Space
from tuning_service.core.spec import SweepSpec

if TYPE_CHECKING:
    from tuning_service.core.results import SweepResult

__all__ = [
    "Choice",
    "Dataset",
    "Fixed",
    "Float",
    "InputSpec",
    "Int",
    "Job",
    "Space",
    "SweepSpec",
    "run_sweep",
]


# Both re-exported lazily, to keep `import tuning_service` light.
def best_config(job: str, **kwargs: Any) -> dict[str, Any]:
    """The best recorded configuration of ``job`` (see `tuning_service.sweeps.aggregate.best_config`)."""
    from tuning_service.sweeps.aggregate import best_config as _best

    return _best(job, **kwargs)


def run_sweep(spec: SweepSpec, **kwargs: Any) -> SweepResult:
    """Run a sweep (see `tuning_service.sweeps.runner.run_sweep`)."""
    from tuning_service.sweeps.runner import run_sweep as _run

    return _run(spec, **kwargs)
