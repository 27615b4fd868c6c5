"""Population Based Training: trials copy better trials' weights and train on with perturbed hyperparameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from tuning_service.core.errors import InputError
from tuning_service.core.registry import AtLeast, AtMost, names_option
from tuning_service.core.space import Fixed, Space

# Settings of the model vocabulary (`tuning_service.training.models`) that can change between two
# epochs of one model: the copied weights and optimizer state still fit and mean the same.
PERTURBABLE = (
    "learning_rate",
    "batch_size",
    "dropout",
    "alpha_dropout",
    "momentum",
    "beta_1",
    "weight_decay",
    *(f"{weights}_{norm}" for weights in ("kernel", "bias", "activity") for norm in ("l1", "l2")),
    "decay_steps",
    "decay_rate",
)
# Vocabulary settings that cannot change mid-training, and why.
_SHAPES = "it changes the model's layers, so the copied weights would not fit"
FIXED_FOR_LIFE = {
    "architecture": _SHAPES,
    "layers": _SHAPES,
    "units": _SHAPES,
    "filters": _SHAPES,
    "conv_layers": _SHAPES,
    "kernel_size": _SHAPES,
    "batch_norm": _SHAPES,
    "optimizer": "another optimizer keeps other state, so the copied optimizer state would not fit",
    "lr_schedule": "it changes what the optimizer's step count means",
    "activation": "the copied weights were trained for another activation",
    "initializer": "it only sets the weights a trial starts from, and a copied trial starts from copied ones",
    "loss": "it changes what the model is trained for",
}
# The searchers whose trials PBT may take over: Ray's PBT chooses configs itself as it goes
# and refuses a model-based searcher (which would be told of results for configs it never chose).
SEARCHERS = ("grid", "random")
_DEFAULT_INTERVAL = 3


def build(
    *,
    max_t: int,
    space: Space,
    perturbation_interval: Annotated[int, AtLeast(1)] = _DEFAULT_INTERVAL,
    quantile_fraction: Annotated[float, AtLeast(0, strict=True), AtMost(0.5)] = 0.25,
    resample_probability: Annotated[float, AtLeast(0), AtMost(1)] = 0.25,
    burn_in_period: Annotated[int, AtLeast(0)] = 0,
    synch: bool = False,
    mutate: tuple[str, ...] = (),
) -> Any:
    """Ray's PopulationBasedTraining in epochs, perturbing ``mutate`` (default: every
    hyperparameter of the space that can change mid-training) within the space's bounds."""
    from tuning_service.raytune.schedulers.population import PopulationBased

    return PopulationBased(
        space,
        mutated(space, mutate),
        time_attr="training_iteration",
        perturbation_interval=perturbation_interval,
        burn_in_period=burn_in_period,
        quantile_fraction=quantile_fraction,
        resample_probability=resample_probability,
        synch=synch,
    )


def check(
    *,
    searcher: str | None,
    space: Space,
    max_t: int | None,
    checkpoint_frequency: int | None,
    mutate: tuple[str, ...] | str = (),
    **options: Any,
) -> None:
    """What PBT needs of the sweep: a searcher it can take trials from, something to perturb,
    an interval shorter than the epoch budget and checkpoints at least that often."""
    if searcher is not None and searcher not in SEARCHERS:
        raise InputError(
            f"scheduler 'pbt' chooses configs itself as trials copy and perturb each other, so it works "
            f"with searcher {' or '.join(SEARCHERS)} (its first population), not {searcher!r}; "
            "add --searcher random"
        )
    mutated(space, names_option(mutate))
    every = interval(options)
    if max_t is not None and every >= max_t:
        raise InputError(
            f"scheduler 'pbt': perturbation_interval {every} must be shorter than the epoch budget "
            f"({max_t} epochs), or no trial is ever perturbed; lower it or raise --max-epochs"
        )
    if checkpoint_frequency is not None and checkpoint_frequency > every:
        raise InputError(
            f"scheduler 'pbt': --checkpoint-frequency {checkpoint_frequency} is longer than the "
            f"perturbation_interval ({every}); trials copy each other's checkpoints at every interval, "
            f"so checkpoint at least that often (--checkpoint-frequency {every} or less, or leave it out)"
        )


def interval(options: Mapping[str, Any]) -> int:
    """The perturbation interval in epochs that ``options`` ask for."""
    return int(options.get("perturbation_interval", _DEFAULT_INTERVAL))


def mutated(space: Space, names: tuple[str, ...] | str = ()) -> tuple[str, ...]:
    """The parameters PBT perturbs: ``names``, each checked, or every perturbable one of ``space``."""
    names = names_option(names)
    if not names:
        found = tuple(n for n in space if n in PERTURBABLE and not isinstance(space[n], Fixed))
        if not found:
            raise InputError(
                f"scheduler 'pbt': the space has no hyperparameter that can change mid-training "
                f"(its parameters: {', '.join(space) or 'none'}; PBT perturbs {', '.join(PERTURBABLE)}); "
                "add one of these to the space, or name one with --scheduler-option mutate=NAME"
            )
        return found
    for name in names:
        if name not in space:
            raise InputError(
                f"scheduler 'pbt': cannot perturb {name!r}: it is not a parameter of the space "
                f"(its parameters: {', '.join(space) or 'none'})"
            )
        why = FIXED_FOR_LIFE.get("units" if re.fullmatch(r"units_[1-9][0-9]*", name) else name)
        if why is not None:
            raise InputError(f"scheduler 'pbt': cannot perturb {name!r}: {why}")
        param = space[name]
        if isinstance(param, Fixed):
            raise InputError(f"scheduler 'pbt': cannot perturb {name!r}: it is fixed at {param.value!r}")
    return names
