"""Vocabulary networks trained by one traced graph per family: trials that differ only in sizes share it.

A new Keras model's first epoch is mostly TensorFlow tracing its train and test
functions (0.61 s of a Telco trial's first epoch against 0.05 s for a later one,
`python -m benchmarks.epoch_cost`), and under ASHA most trials train one or two epochs.
Keras bakes every weight's shape and every hyperparameter into the graph it traces, so
two trials with other layer widths or learning rates trace again. Here a whole epoch
(every training step, then the validation pass) is one `tf.function` whose weights,
optimizer state and hyperparameters are arguments: weights have a known rank and
unknown sizes, hyperparameters are scalar tensors. It is traced once per *family*
(the network's structure: layer kinds, activations, which regularizers, the optimizer
and schedule kinds, the loss) and every later trial of the family runs it as it is.

The math is Keras' own, step for step: the same initial weights (the layers' own
initializers, seeded as `Network.to_keras` would seed them), the same forward ops, the
same loss and regularization terms summed in the same order, the same optimizer update
expressions with Python-side constants computed on the Python side as Keras does, the
same dropout masks (a dropout layer's seed and call counter, as Keras' SeedGenerator
keeps them), and the same running means for the logged loss and metrics.
`tests/training/test_sharedgraph.py` checks every setting of the vocabulary against a
freshly built Keras model. A network with anything this module does not know (a layer,
an optimizer option, a metric) raises `Unsupported`, and the trial trains with Keras'
`fit` instead.
"""

from __future__ import annotations

from tuning_service.training.sharedgraph.family import data_specs, family_count
from tuning_service.training.sharedgraph.layers import Unsupported
from tuning_service.training.sharedgraph.model import GraphModel, try_graph_model

__all__ = ["GraphModel", "Unsupported", "data_specs", "family_count", "try_graph_model"]
