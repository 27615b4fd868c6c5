"""A trial's model behind one interface: the shared graph where the network allows, else Keras' fit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tuning_service.core.job import InputSpec, Job
from tuning_service.training.fit import fit as fit_model
from tuning_service.training.models import network_of
from tuning_service.training.pipeline import Split


class TrialModel(Protocol):
    """What the trainable does with a model: train an epoch, save and load its whole training state."""

    suffix: str  # of its checkpoint file

    def fit_epoch(self, fit: Split, val: Split, *, batch_size: int, order: Any) -> dict[str, float]:
        """One epoch over ``fit`` in ``order`` (a row permutation), then validation: Keras' history values."""
        ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...


class KerasModel:
    """A compiled Keras model trained by ``fit``, one epoch per call: a job's own builder's model,
    or a vocabulary network with something the shared graph does not reproduce."""

    suffix = ".keras"

    def __init__(self, model: Any, threads: int = 1) -> None:
        self.model, self.threads = model, threads

    def fit_epoch(self, fit: Split, val: Split, *, batch_size: int, order: Any) -> dict[str, float]:
        return fit_model(
            self.model,
            fit.batches(batch_size, order=order, threads=self.threads),
            validation_data=val.batches(batch_size, threads=self.threads),
            shuffle=False,  # the order is the pipeline's
        )

    def save(self, path: Path) -> None:
        self.model.save(path)

    def load(self, path: Path) -> None:
        """Weights and optimizer state from ``path`` into this model, which keeps its own
        hyperparameters: a paused trial continues exactly where it stopped, and a PBT trial
        that copied another's checkpoint trains on with its new learning rate and dropout.
        (Loading the saved model whole would bring back the saver's.)"""
        optimizer = self.model.optimizer
        if not optimizer.built:  # an unbuilt optimizer skips its saved state
            optimizer.build(self.model.trainable_variables)
        # The learning rate is an optimizer variable (a schedule is not): the file holds the saver's.
        mine = [(v, v.numpy()) for v in optimizer.variables if v.path.endswith("/learning_rate")]
        self.model.load_weights(path)
        for variable, value in mine:
            variable.assign(value)


def trial_models(
    job: Job, config: Mapping[str, Any], spec: InputSpec, fits: list[Split], *, seed: int, threads: int = 1
) -> list[TrialModel]:
    """The models of ``config``, one per training split (fold), built from ``seed``.

    A network of the shared vocabulary trains through its family's traced graph; anything
    else, and any network the graph does not reproduce (the debug log says why), is built
    and compiled by Keras. Both start from the same initial weights.
    """
    network = network_of(job.build_model)
    if network is None:
        _seed(seed, tensorflow=True)
        return [KerasModel(job.build_model(config, spec), threads) for _ in fits]
    from tuning_service.training.sharedgraph import data_specs, try_graph_model

    _seed(seed, tensorflow=False)
    models: list[TrialModel] = []
    for fit in fits:
        net = network(config, spec)
        graph = try_graph_model(net, data_specs(fit.x, fit.y))
        if graph is None:
            _seed_tensorflow(seed)
        models.append(graph or KerasModel(net.to_keras(), threads))
    return models


def _seed(seed: int, *, tensorflow: bool) -> None:
    """Keras' `set_random_seed`, leaving TensorFlow's global seed alone where nothing reads it.

    A vocabulary network draws its initializers' and dropout layers' seeds from Python's
    generator when its layers are made, and the shared graph runs stateless ops only.
    Setting TensorFlow's seed clears its kernel cache: every traced graph's next call
    then instantiates its kernels again (40-80 ms for a Telco epoch, four times the epoch).
    """
    import random

    import numpy as np

    if tensorflow:
        import keras

        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)


def _seed_tensorflow(seed: int) -> None:
    import tensorflow as tf

    tf.random.set_seed(seed)
