"""Ray Tune stoppers for sweep-wide budgets counted in epochs."""

from __future__ import annotations

from typing import Any

from ray import tune


class EpochCap(tune.Stopper):
    """Stops a trial once it has trained ``max_epochs`` epochs.

    Unlike Tune's MaximumIterationStopper, which counts the results it is shown, this
    reads the epoch off the result: a trial retried from a checkpoint reports some
    epochs twice, and a resumed sweep's stopper has seen none of the epochs before it.
    """

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return int(result.get("training_iteration") or 0) >= self.max_epochs

    def stop_all(self) -> bool:
        return False


class EpochBudget(tune.Stopper):
    """Stops the whole sweep once its trials have trained ``budget`` epochs in total.

    Tune calls the stopper with every reported result (one per epoch), so counting
    calls counts epochs; comparisons with in-process tuners then spend the same work.
    """

    def __init__(self, budget: int, spent: int = 0) -> None:
        self.budget = budget
        self.spent = spent

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.spent += 1
        return False

    def stop_all(self) -> bool:
        return self.spent >= self.budget
