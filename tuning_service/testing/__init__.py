"""Small jobs shipped with the package, for tests and for trying the engine in seconds."""

from __future__ import annotations

from typing import Any

from tuning_service.core.job import Dataset, Job
from tuning_service.core.space import Choice, Float, Space
from tuning_service.training.models import build_mlp


def _tiny_digits(*, limit: int | None = None, data_dir: Any = None, seed: int = 0) -> Dataset:
    from jobs.digits import load_data

    return load_data(limit=limit or 256, seed=seed)


def tiny_job(space: dict[str, Any] | Space | None = None, *, max_epochs: int = 2, **defaults: Any) -> Job:
    """Digits capped at 256 training rows, one small Dense layer: a trial takes about a second."""
    return Job(
        name="tiny",
        description="digits, 256 training rows, one small hidden layer",
        space=space
        if space is not None
        else {"learning_rate": Float(1e-3, 3e-2, log=True), "units": Choice((8, 16))},
        load_data=_tiny_digits,
        build_model=build_mlp,
        max_epochs=max_epochs,
        defaults={"layers": 1, "units": 16, "optimizer": "adam", "batch_size": 64, **defaults},
    )


def __getattr__(name: str) -> Any:
    # NoopTrainable imports Ray; load it only when asked for.
    if name == "NoopTrainable":
        from tuning_service.testing.noop import NoopTrainable

        return NoopTrainable
    raise AttributeError(name)
