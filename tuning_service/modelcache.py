"""Traced models kept by a worker, so a trial whose model has an earlier trial's graph skips tracing.

A new Keras model's first epoch is mostly TensorFlow tracing its train and test
functions: 0.58 s of a Telco trial's first epoch against 0.046 s for a later one
(`python -m benchmarks.epoch_cost`), and most trials under ASHA train one or two epochs.
Trials that differ only in their learning rate, batch size or epoch budget run the same
graph: Keras' optimizers hold the learning rate in a variable, batches have no fixed
size, and the epoch budget is the trainable's. So a worker keeps the models of its
finished trials, and a new trial with the same graph takes one over: its variables
(weights, seed states) and its optimizer's (step, learning rate, moments) are set to
exactly the values of a freshly built model, so the trial trains as it would on a new
model, minus the tracing.

Only models built through `models.compile_model` are reused: a job's own builder may turn
any configuration value into a graph constant.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

# Set by models.compile_model on the models it builds.
REUSABLE = "_tuning_service_reusable"
# Set by the cache on a reusable model: the key of its graph (see graph_key).
GRAPH = "_tuning_service_graph"
# Configuration keys that never become constants in a reusable model's graph.
NOT_IN_GRAPH = ("learning_rate", "batch_size", "epochs", "patience")
# Idle models a worker keeps (each holds its variables and traced graphs, a few MB for an MLP).
KEPT = 16


def graph_key(cfg: Mapping[str, Any], *, learning_rate_is_variable: bool) -> str:
    """What decides a reusable model's graph: its configuration but the keys outside it
    (the learning rate stays in when a schedule makes it part of the graph)."""
    skip = (
        NOT_IN_GRAPH if learning_rate_is_variable else tuple(k for k in NOT_IN_GRAPH if k != "learning_rate")
    )
    return json.dumps({k: v for k, v in cfg.items() if k not in skip}, sort_keys=True, default=str)


def _learning_rate_is_variable(model: Any) -> bool:
    import keras

    optimizer = getattr(model, "optimizer", None)
    return isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable)


def _same_shapes(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(tuple(x.shape) == tuple(y.shape) for x, y in zip(a, b, strict=True))


class ModelCache:
    """A worker's idle traced models, by graph; the most recently used are kept."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._idle: OrderedDict[str, list[Any]] = OrderedDict()
        self.reused = 0  # models taken over since the worker started (for tests and benchmarks)

    def build(self, build: Callable[[], Any], cfg: Mapping[str, Any]) -> Any:
        """A model for ``cfg``: ``build()``'s own, or an idle model with the same graph set
        to its initial state. Call it where ``build()`` alone would be called (after seeding)."""
        fresh = build()
        if not getattr(fresh, REUSABLE, False):
            return fresh
        key = graph_key(cfg, learning_rate_is_variable=_learning_rate_is_variable(fresh))
        setattr(fresh, GRAPH, key)
        idle = self._idle.get(key)
        if not idle:
            return fresh
        model = idle.pop()
        if not idle:
            del self._idle[key]
        # Keras creates an optimizer's moments on its first step; build them now, as that step would.
        fresh.optimizer.build(fresh.trainable_variables)
        pairs = [(model.variables, fresh.variables), (model.optimizer.variables, fresh.optimizer.variables)]
        if not all(_same_shapes(mine, theirs) for mine, theirs in pairs):
            return fresh
        for mine, theirs in pairs:
            for target, source in zip(mine, theirs, strict=True):
                target.assign(source)
        setattr(model, GRAPH, key)
        self.reused += 1
        return model

    def release(self, models: list[Any]) -> None:
        """Keep a finished trial's models for later trials with the same graph."""
        for model in models:
            key = getattr(model, GRAPH, None)
            if key is None or getattr(model, "train_function", None) is None:
                continue  # not reusable, or never trained: nothing traced to save
            self._idle.setdefault(key, []).append(model)
            self._idle.move_to_end(key)
        while sum(len(v) for v in self._idle.values()) > self.kept:
            oldest = next(iter(self._idle))
            self._idle[oldest].pop(0)
            if not self._idle[oldest]:
                del self._idle[oldest]
