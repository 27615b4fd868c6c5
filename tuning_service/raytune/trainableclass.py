"""A sweep's trainable class, looked up in Ray's registry once per sweep instead of per trial.

Tune's trials look their trainable's class up by name whenever they need it (a trial's
resources as the trial is added, its actor as it starts): a call to Ray's GCS to check the
name is registered, another to fetch the class, and an unpickling of it. In a sweep of short
trials that was 7 % of the driver's step (`python -m benchmarks.overhead --trials 128` under
py-spy; RESULTS.md). Each new trial also checks that its name is registered, another call to
the GCS, in the step that adds it. A sweep registers its trainable before Tune starts running
it, so while it runs a name always gives the same class.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tuning_service.raytune.tunepatch import replaced


@contextmanager
def trainables_looked_up_once() -> Iterator[None]:
    """While open, each trainable name is looked up (and checked) in Ray's registry the first
    time only; a name not registered is refused each time, as by Tune."""
    from ray.tune.experiment import Trial
    from ray.tune.experiment import trial as trial_module

    tunes = Trial.get_trainable_cls
    known: dict[str, Any] = {}
    tunes_check = trial_module.validate_trainable
    registered: set[str] = set()

    def validate_trainable(name: str) -> None:
        if name not in registered:
            tunes_check(name)
            registered.add(name)

    def get_trainable_cls(trial: Trial) -> Any:
        if trial.stub:
            return tunes(trial)
        name = trial.trainable_name
        if name not in known:
            known[name] = tunes(trial)
        return known[name]

    with (
        replaced(Trial, "get_trainable_cls", get_trainable_cls),
        replaced(trial_module, "validate_trainable", validate_trainable),
    ):
        yield
