"""A family: one traced epoch shared by every network of one structure, kept per process."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from tuning_service.training.sharedgraph.layers import Step, penalty
from tuning_service.training.sharedgraph.losses import loss_object, metric_fn
from tuning_service.training.sharedgraph.optimizers import OptimizerOp, learning_rate

log = logging.getLogger(__name__)

# Families whose traced epoch a worker keeps (each is one graph, well under a MB).
KEPT_FAMILIES = 32


@dataclass(frozen=True)
class Structure:
    """Everything that shapes a family's graph; equal structures share one traced epoch."""

    data: tuple[Any, Any]  # TensorSpecs of the features and targets, rows unknown
    ops: tuple[Any, ...]
    loss: str
    metrics: tuple[str, ...]
    optimizer: OptimizerOp
    schedule: tuple[Any, ...] | None
    outputs: int
    inputs: tuple[tuple[str, str], ...]  # (name, dtype) of the per-trial inputs

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def data_specs(x: Any, y: Any) -> tuple[Any, Any]:
    """The TensorSpecs a family's graph takes a split's features and targets as."""
    import tensorflow as tf

    return (
        tf.TensorSpec([None, *x.shape[1:]], x.dtype),
        tf.TensorSpec([None, *y.shape[1:]], y.dtype),
    )


class Family:
    """One traced epoch, shared by every trial of a structure in this process."""

    def __init__(self, structure: Structure, param_ranks: list[int], buffer_ranks: list[int]) -> None:
        import tensorflow as tf

        self.structure = structure
        s = structure
        y_rank = len(s.data[1].shape)
        self.loss = loss_object(s.loss, y_rank, s.outputs)
        self.metric_fns = [metric_fn(m, y_rank, s.outputs) for m in s.metrics]
        self.traces = 0

        def spec(rank: int) -> Any:
            return tf.TensorSpec([None] * rank, tf.float32)

        params = [spec(r) for r in param_ranks]
        state = {
            "params": params,
            "buffers": [spec(r) for r in buffer_ranks],
            "slots": [list(params) for _ in s.optimizer.slots],
            "extra": [tf.TensorSpec([], tf.float32) for _ in s.optimizer.initial_globals()],
            "step": tf.TensorSpec([], tf.int64),
        }
        inputs = {name: tf.TensorSpec([], tf.dtypes.as_dtype(dtype)) for name, dtype in s.inputs}
        signature = [
            state,
            inputs,
            *s.data,  # training features, targets
            tf.TensorSpec([None], tf.int64),  # the epoch's row order
            *s.data,  # validation features, targets
            tf.TensorSpec([], tf.int64),  # batch size
        ]
        self.epoch = tf.function(
            self._epoch, input_signature=signature, autograph=False, reduce_retracing=False
        )

    # The body of the traced function: Python runs it once per family.
    def _epoch(
        self,
        state: dict[str, Any],
        h: dict[str, Any],
        x: Any,
        y: Any,
        order: Any,
        x_val: Any,
        y_val: Any,
        batch: Any,
    ) -> Any:
        import tensorflow as tf

        self.traces += 1
        zero = tf.constant(0.0)
        rows = tf.shape(order, out_type=tf.int64)[0]

        def go_on(start: Any, state: Any, sums: Any) -> Any:
            # Keras' TerminateOnNaN: stop as soon as the running loss is not finite.
            running = tf.math.divide_no_nan(sums[0], sums[1])
            return tf.logical_and(start < rows, tf.math.is_finite(running))

        def train_step(start: Any, state: Any, sums: Any) -> Any:
            idx = order[start : start + batch]
            xb, yb = tf.gather(x, idx), tf.gather(y, idx)
            state, loss, y_pred = self._train_step(state, h, xb, yb)
            return start + batch, state, self._accumulate(sums, loss, xb, yb, y_pred)

        sums = [zero] * (2 + 2 * len(self.metric_fns))  # loss total/count, then each metric's
        _, state, sums = tf.while_loop(go_on, train_step, (tf.constant(0, tf.int64), state, sums))
        logs = self._results(sums)

        val_rows = tf.shape(x_val, out_type=tf.int64)[0]

        def val_step(start: Any, sums: Any) -> Any:
            xb, yb = x_val[start : start + batch], y_val[start : start + batch]
            step = Step(training=False, step=state["step"], losses=[])
            y_pred, _ = self._forward(state["params"], state["buffers"], xb, h, step)
            loss = self._total_loss(state["params"], yb, y_pred, h, step)
            return start + batch, self._accumulate(sums, loss, xb, yb, y_pred)

        _, val_sums = tf.while_loop(
            lambda start, _: start < val_rows, val_step, (tf.constant(0, tf.int64), [zero] * len(sums))
        )
        logs.update({f"val_{k}": v for k, v in self._results(val_sums).items()})
        return state, logs

    def _forward(self, params: list[Any], buffers: list[Any], x: Any, h: Any, step: Step) -> Any:
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
        new_buffers: list[Any] = []
        p = b = 0
        for i, op in enumerate(self.structure.ops):
            x, out = op.forward(i, params[p : p + op.params], buffers[b : b + op.buffers], x, h, step)
            new_buffers += out
            p, b = p + op.params, b + op.buffers
        # The head's width is part of the family: losses and metrics read it from the static shape.
        for tensor in (x, getattr(x, "_keras_logits", None)):
            if tensor is not None:
                tensor.set_shape([None, self.structure.outputs])
        return x, new_buffers

    def _total_loss(self, params: list[Any], y: Any, y_pred: Any, h: Any, step: Step) -> Any:
        """Keras' compute_loss: the compiled loss, then activity and weight penalties, summed."""
        import tensorflow as tf

        losses = [tf.cast(self.loss(y, y_pred), tf.float32)] + step.losses
        p = 0
        for i, op in enumerate(self.structure.ops):
            for j, (kind, name) in enumerate(op.weight_penalties(i)):
                if kind != (False, False):
                    losses.append(penalty(kind, name, params[p + j], h))
            p += op.params
        return losses[0] if len(losses) == 1 else tf.reduce_sum(tf.stack(losses))

    def _train_step(self, state: dict[str, Any], h: Any, x: Any, y: Any) -> Any:
        import tensorflow as tf

        params = state["params"]
        step = Step(training=True, step=state["step"], losses=[])
        with tf.GradientTape() as tape:
            tape.watch(params)
            y_pred, buffers = self._forward(params, state["buffers"], x, h, step)
            loss = self._total_loss(params, y, y_pred, h, step)
        grads = tape.gradient(loss, params)
        lr = tf.cast(learning_rate(self.structure.schedule, state["step"], h), tf.float32)
        params, slots, extra = self.structure.optimizer.apply(
            params, grads, state["slots"], state["extra"], lr, state["step"], h
        )
        new_state = {
            "params": params,
            "buffers": buffers,
            "slots": slots,
            "extra": extra,
            "step": state["step"] + 1,
        }
        return new_state, loss, y_pred

    def _accumulate(self, sums: list[Any], loss: Any, x: Any, y: Any, y_pred: Any) -> list[Any]:
        """Keras' Mean trackers: the loss weighted by the batch's rows, each metric per sample."""
        import tensorflow as tf

        rows = tf.cast(tf.shape(x)[0], tf.float32)
        out = [sums[0] + tf.reduce_sum(loss * rows), sums[1] + rows]
        for k, fn in enumerate(self.metric_fns):
            values = tf.cast(fn(y, y_pred), tf.float32)
            if len(values.shape) > 1:
                values = tf.reduce_mean(values, axis=list(range(1, len(values.shape))))
            count = tf.cast(tf.shape(values)[0], tf.float32) if len(values.shape) >= 1 else tf.constant(1.0)
            out += [sums[2 + 2 * k] + tf.reduce_sum(values), sums[3 + 2 * k] + count]
        return out

    def _results(self, sums: list[Any]) -> dict[str, Any]:
        import tensorflow as tf

        logs = {"loss": tf.math.divide_no_nan(sums[0], sums[1])}
        for k, name in enumerate(self.structure.metrics):
            logs[name] = tf.math.divide_no_nan(sums[2 + 2 * k], sums[3 + 2 * k])
        return logs


_FAMILIES: OrderedDict[Structure, Family] = OrderedDict()


def family_count() -> int:
    """Families traced and kept by this process (for tests and benchmarks)."""
    return len(_FAMILIES)


def family(structure: Structure, param_ranks: list[int], buffer_ranks: list[int]) -> Family:
    family = _FAMILIES.get(structure)
    if family is None:
        family = _FAMILIES[structure] = Family(structure, param_ranks, buffer_ranks)
        log.debug("new shared-graph family %s: %s", structure.key, structure)
        while len(_FAMILIES) > KEPT_FAMILIES:
            _FAMILIES.popitem(last=False)
    _FAMILIES.move_to_end(structure)
    return family
