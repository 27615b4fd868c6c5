"""Ray's PopulationBasedTraining, kept inside the job's space and noting every exploit for the results store."""

from __future__ import annotations

import math
from typing import Any

from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pbt import _FutureTrainingResult

from tuning_service.core.space import Choice, Int, Param, Space, _Range

# A rate of 0 builds no dropout layer: moving to or from 0 would change the model's layers.
ZERO_MEANS_NO_LAYER = ("dropout", "alpha_dropout")


def mutation(param: Param) -> Any:
    """What Ray's PBT perturbs ``param`` with: a choice's values (shifted to a neighbour or
    resampled), or a range's Tune domain (multiplied by 0.8 or 1.2, or resampled)."""
    if isinstance(param, Choice):
        return list(param.values)
    return param.to_ray()


def inside(param: Param, value: Any) -> Any:
    """``value`` brought back into ``param``'s range (Ray's multiplication may leave it)."""
    if not isinstance(param, _Range) or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    value = min(max(value, param.low), param.high)
    if param.step:
        value = param.low + round((value - param.low) / param.step) * param.step
        value = min(value, param.high)
    return int(round(value)) if isinstance(param, Int) else float(value)


class PopulationBased(PopulationBasedTraining):
    """Ray's PBT whose perturbed configs stay in the job's space; each exploit is kept in
    ``exploits`` (plain data) until the store's lineage recorder takes it."""

    def __init__(self, space: Space, mutate: tuple[str, ...], **options: Any) -> None:
        super().__init__(
            hyperparam_mutations={n: mutation(space[n]) for n in mutate}, log_config=False, **options
        )
        self.space = space
        self.mutate = mutate
        self.exploits: list[dict[str, Any]] = []
        self.exploit_count = 0

    def _get_new_config(self, trial: Trial, trial_to_clone: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
        new_config, operations = super()._get_new_config(trial, trial_to_clone)
        for name in self.mutate:
            donor = trial_to_clone.config.get(name)
            value = inside(self.space[name], new_config.get(name))
            if name in ZERO_MEANS_NO_LAYER and _is_zero(donor) != _is_zero(value):
                value, operations[name] = donor, "kept (0 means no dropout layer)"
            new_config[name] = value
        return new_config, operations

    def _exploit(self, tune_controller: TuneController, trial: Trial, trial_to_clone: Trial) -> None:
        before = self.space.effective(trial.config)
        mine, theirs = self._trial_state[trial], self._trial_state[trial_to_clone]
        # Ray types a result's values as object; the time attribute's are epoch counts.
        epoch: Any = (mine.last_result or {}).get(self._time_attr)
        donor_epoch: Any = (theirs.last_result or {}).get(self._time_attr)
        donor_config = self.space.effective(trial_to_clone.config)
        super()._exploit(tune_controller, trial, trial_to_clone)
        # Ray's PBT gives the trial the donor's checkpoint behind the back of Tune's cached JSON
        # of the trial's run metadata: without this, a snapshot taken before the trial next
        # reports would keep the new config with the old (or no) checkpoint, and a resumed
        # trial would train the new config from a start it never had.
        trial.run_metadata.invalidate_cache()
        # A trial exploited while its own save was in flight is paused by Ray's PBT through a
        # stop, which Tune then keeps as a decision to carry out once that save lands. The save
        # is cancelled, so the decision waits for the trial's next save instead, after it has
        # restarted from the donor's checkpoint, and would end it there (a resumed sweep gets
        # the decision back from Tune's snapshot). The paused trial has nothing left to decide.
        tune_controller._cached_trial_decisions.pop(trial.trial_id, None)
        after = self.space.effective(trial.config)
        changed = sorted(
            {k for k in (*before, *after) if before.get(k, _ABSENT) != after.get(k, _ABSENT)}
            | set(self.mutate)
        )
        self.exploit_count += 1
        self.exploits.append(
            {
                "number": self.exploit_count,
                "trial_id": trial.trial_id,
                "epoch": int(epoch or 0),
                "value": self._value(mine),
                "donor_id": trial_to_clone.trial_id,
                "donor_epoch": int(donor_epoch or 0),
                "donor_value": self._value(theirs),
                "changes": {
                    k: {"old": before.get(k), "donor": donor_config.get(k), "new": after.get(k)}
                    for k in changed
                    if k in after or k in before
                },
            }
        )

    def _value(self, state: Any) -> float | None:
        value = (state.last_result or {}).get(self._metric)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def snapshot_vars(self) -> dict[str, Any]:
        """The attributes Tune's snapshot keeps (see `state.SchedulerState`): a checkpoint still
        being saved is a live Ray future, which cannot outlive this driver, so it is left out."""
        saved = dict(vars(self))
        states = {}
        for trial, state in self._trial_state.items():
            if isinstance(state.last_checkpoint, _FutureTrainingResult):
                copy = type(state).__new__(type(state))
                copy.__dict__.update(vars(state), last_checkpoint=None)
                state = copy
            states[trial] = state
        saved["_trial_state"] = states
        return saved


_ABSENT = object()


def _is_zero(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0
