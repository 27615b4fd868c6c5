"""A trial's network trained through its family's traced epoch; its whole state lives here, as tensors."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from tuning_service.training.models import Network
from tuning_service.training.pipeline import Split
from tuning_service.training.sharedgraph.family import Structure, family
from tuning_service.training.sharedgraph.layers import LAYER_OPS, Unsupported
from tuning_service.training.sharedgraph.optimizers import OptimizerOp, schedule_structure

log = logging.getLogger(__name__)


class GraphModel:
    """One network trained through its family's traced epoch: its state lives here, as tensors.

    Build it where the Keras model would be built (after seeding): the layers' initializers
    and dropout seeds were drawn when ``network``'s layers were made.
    """

    suffix = ".npz"  # of its checkpoint file

    def __init__(self, network: Network, data: tuple[Any, Any]) -> None:
        import numpy as np
        import tensorflow as tf

        inputs: dict[str, float] = {}
        ops, params, buffers = [], [], []
        shape: tuple[Any, ...] = (None, *network.input_shape)
        for i, layer in enumerate(network.layers):
            kind = LAYER_OPS.get(type(layer).__name__)
            if kind is None or type(layer).__module__.split(".")[0] != "keras":
                raise Unsupported(f"layer {type(layer).__name__}")
            if layer.dtype_policy.name != "float32":
                raise Unsupported(f"dtype policy {layer.dtype_policy.name}")
            ops.append(kind.describe(layer, i, inputs))
            p, b = kind.init(layer, shape)
            params += p
            buffers += b
            shape = tuple(layer.compute_output_shape(shape))
        optimizer = OptimizerOp.describe(network.optimizer, inputs)
        schedule = schedule_structure(network.optimizer.learning_rate, inputs)
        names = sorted(inputs)
        structure = Structure(
            data=data,
            ops=tuple(ops),
            loss=network.loss,
            metrics=tuple(network.metrics),
            optimizer=optimizer,
            schedule=schedule,
            outputs=int(shape[-1]),
            inputs=tuple((n, "int64" if n.endswith("/seed") else "float32") for n in names),
        )
        self.family = family(structure, [len(p.shape) for p in params], [len(b.shape) for b in buffers])
        self.inputs = {n: tf.constant(inputs[n], dtype=dt) for n, dt in structure.inputs}
        params = [tf.convert_to_tensor(p) for p in params]
        self.state: dict[str, Any] = {
            "params": params,
            "buffers": [tf.convert_to_tensor(b) for b in buffers],
            "slots": [
                [tf.convert_to_tensor(s) for s in slot] for slot in optimizer.initial_slots(params, inputs)
            ],
            "extra": [tf.constant(v) for v in optimizer.initial_globals()],
            "step": tf.constant(np.int64(0)),
        }

    def fit_epoch(self, fit: Split, val: Split, *, batch_size: int, order: Any) -> dict[str, float]:
        """One epoch over ``fit`` in ``order``, then the validation pass over ``val``: Keras' history values."""
        import tensorflow as tf

        batch = tf.constant(batch_size, tf.int64)
        self.state, logs = self.family.epoch(
            self.state, self.inputs, fit.x, fit.y, order, val.x, val.y, batch
        )
        return {k: float(v) for k, v in logs.items()}

    @property
    def weights(self) -> list[Any]:
        """Every layer's weights then its moving statistics, layer by layer: the Keras model's order."""
        out, p, b = [], 0, 0
        for op in self.family.structure.ops:
            out += self.state["params"][p : p + op.params] + self.state["buffers"][b : b + op.buffers]
            p, b = p + op.params, b + op.buffers
        return out

    def save(self, path: Path) -> None:
        """The whole training state (weights, optimizer slots, step, dropout seeds) as one .npz file."""
        import numpy as np

        arrays = {f"state{i}": v.numpy() for i, v in enumerate(self._flat())}
        # Dropout layers' seeds travel with the weights, as a Keras model file keeps its seed generators'.
        arrays.update({f"input:{k}": v.numpy() for k, v in self.inputs.items() if k.endswith("/seed")})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write_bytes(buffer.getvalue())

    def load(self, path: Path) -> None:
        import numpy as np
        import tensorflow as tf

        with np.load(path) as saved:
            state = [tf.convert_to_tensor(saved[f"state{i}"]) for i in range(len(self._flat()))]
            seeds = {k.removeprefix("input:"): saved[k] for k in saved.files if k.startswith("input:")}
        if set(seeds) != {k for k in self.inputs if k.endswith("/seed")}:
            raise ValueError(f"{path} was saved by a model of another structure")
        self.state = tf.nest.pack_sequence_as(self.state, state)
        self.inputs.update({k: tf.constant(v) for k, v in seeds.items()})

    def _flat(self) -> list[Any]:
        import tensorflow as tf

        flat: list[Any] = tf.nest.flatten(self.state)
        return flat


def try_graph_model(network: Network, data: tuple[Any, Any]) -> GraphModel | None:
    """A `GraphModel` of ``network``, or None (with the reason in the debug log) when it has to use Keras."""
    try:
        return GraphModel(network, data)
    except Unsupported as exc:
        log.debug("training with Keras' fit: the shared graph does not reproduce %s", exc)
        return None
