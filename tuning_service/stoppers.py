"""Ray Tune stoppers for sweep-wide budgets counted in epochs."""

from __future__ import annotations

from typing import Any

from ray import tune


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
