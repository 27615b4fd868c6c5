"""Keras' optimizers and learning-rate schedules, as the shared graph runs them on tensor arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuning_service.training.models import OptimizerSpec, ScheduleSpec
from tuning_service.training.sharedgraph.layers import Inputs, Unsupported

# Each update mirrors the Keras optimizer's `update_step` for the TensorFlow backend
# expression by expression. Where Keras computes with a Python float (``1 - self.beta_1``),
# that number is computed here in Python too and enters as a float32 input: float32
# arithmetic on the tensor would round differently.


def _defaults(cls_name: str) -> dict[str, Any]:
    import keras

    signature = inspect.signature(getattr(keras.optimizers, cls_name).__init__)
    return {k: p.default for k, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}


# Constructor arguments whose defaults every supported optimizer must keep.
_PLAIN = {
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


@dataclass(frozen=True)
class OptimizerOp:
    """An optimizer's structure: its kind and the branches its options select."""

    kind: str
    momentum: bool = False  # SGD, RMSprop: a momentum slot
    nesterov: bool = False
    weight_decay: bool = False

    @property
    def slots(self) -> tuple[str, ...]:
        return {
            "SGD": ("momentum",) if self.momentum else (),
            "Adagrad": ("accumulator",),
            "RMSprop": ("velocity", "momentum") if self.momentum else ("velocity",),
            "Adadelta": ("accumulated_grad", "accumulated_delta_var"),
            "Adam": ("momentum", "velocity"),
            "AdamW": ("momentum", "velocity"),
            "Nadam": ("momentum", "velocity"),
        }[self.kind]

    @classmethod
    def describe(cls, spec: OptimizerSpec, inputs: Inputs) -> OptimizerOp:
        if spec.name not in ("SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Nadam"):
            raise Unsupported(f"optimizer {spec.name}")
        options = {**_defaults(spec.name), **spec.options}
        if (
            any(options.get(k, v) != v for k, v in _PLAIN.items())
            or options.get("amsgrad")
            or options.get("centered")
        ):
            raise Unsupported(f"{spec.name} with {spec.options}")
        weight_decay = options.get("weight_decay")
        if weight_decay is not None:
            inputs["weight_decay"] = float(weight_decay)
        for name in ("momentum", "beta_1", "beta_2", "rho", "epsilon"):
            if options.get(name) is not None:
                value = float(options[name])
                inputs[name] = value
                inputs[f"1-{name}"] = 1 - value
        if spec.name == "Adagrad":
            inputs["initial_accumulator_value"] = float(options["initial_accumulator_value"])
        momentum = spec.name in ("SGD", "RMSprop") and float(options.get("momentum") or 0.0) != 0.0
        return cls(spec.name, momentum, bool(options.get("nesterov")), weight_decay is not None)

    def initial_slots(self, params: list[Any], inputs: Mapping[str, float]) -> list[list[Any]]:
        import numpy as np

        fill = inputs.get("initial_accumulator_value", 0.0) if self.kind == "Adagrad" else 0.0
        return [[np.full(p.shape, fill, dtype="float32") for p in params] for _ in self.slots]

    def initial_globals(self) -> list[Any]:
        import numpy as np

        return [np.float32(1.0)] if self.kind == "Nadam" else []  # Nadam's running product of mu

    def apply(
        self,
        params: list[Any],
        grads: list[Any],
        slots: list[list[Any]],
        extra: list[Any],
        lr: Any,
        it: Any,
        h: Any,
    ) -> tuple[list[Any], list[list[Any]], list[Any]]:
        """One `apply_gradients`: weight decay, then every variable's update; ``it`` is the step before it."""
        import tensorflow as tf

        if self.weight_decay:
            params = [p - p * tf.cast(h["weight_decay"], p.dtype) * lr for p in params]
        if self.kind == "Nadam":
            u_product = (
                extra[0] * h["beta_1"] * (1.0 - 0.5 * tf.pow(tf.constant(0.96), tf.cast(it + 1, tf.float32)))
            )
            extra = [u_product]
        new_params: list[Any] = []
        new_slots: list[list[Any]] = [[] for _ in self.slots]
        for j, (p, g) in enumerate(zip(params, grads, strict=True)):
            state = [s[j] for s in slots]
            p, state = UPDATES[self.kind](self, p, g, state, extra, lr, it, h)
            new_params.append(p)
            for k, value in enumerate(state):
                new_slots[k].append(value)
        return new_params, new_slots, extra


def _sgd(op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any) -> Any:
    if not op.momentum:
        return p - g * lr, s
    m = s[0] * h["momentum"] - g * lr
    if op.nesterov:
        return p + (m * h["momentum"] - g * lr), [m]
    return p + m, [m]


def _adagrad(
    op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any
) -> Any:
    import tensorflow as tf

    acc = s[0] + tf.square(g)
    return p - (lr * g) / tf.sqrt(acc + h["epsilon"]), [acc]


def _rmsprop(
    op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any
) -> Any:
    import tensorflow as tf

    velocity = h["rho"] * s[0] + h["1-rho"] * tf.square(g)
    increment = (lr * g) / tf.sqrt(velocity + h["epsilon"])
    if not op.momentum:
        return p - increment, [velocity]
    momentum = h["momentum"] * s[1] + increment
    return p - momentum, [velocity, momentum]


def _adadelta(
    op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any
) -> Any:
    import tensorflow as tf

    def rms(x: Any) -> Any:
        return tf.sqrt(x + h["epsilon"])

    acc_grad = h["rho"] * s[0] + h["1-rho"] * tf.square(g)
    delta = -((rms(s[1]) * g) / rms(acc_grad))
    acc_delta = h["rho"] * s[1] + h["1-rho"] * tf.square(delta)
    return p + lr * delta, [acc_grad, acc_delta]


def _adam(op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any) -> Any:
    import tensorflow as tf

    local_step = tf.cast(it + 1, p.dtype)
    beta_1_power = tf.pow(h["beta_1"], local_step)
    beta_2_power = tf.pow(h["beta_2"], local_step)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = s[0] + (g - s[0]) * h["1-beta_1"]
    v = s[1] + (tf.square(g) - s[1]) * h["1-beta_2"]
    return p - (m * alpha) / (tf.sqrt(v) + h["epsilon"]), [m, v]


def _nadam(op: OptimizerOp, p: Any, g: Any, s: list[Any], extra: list[Any], lr: Any, it: Any, h: Any) -> Any:
    import tensorflow as tf

    local_step = tf.cast(it + 1, p.dtype)
    next_step = tf.cast(it + 2, p.dtype)
    decay = tf.constant(0.96, p.dtype)
    beta_1, beta_2 = h["beta_1"], h["beta_2"]
    u_t = beta_1 * (1.0 - 0.5 * tf.pow(decay, local_step))
    u_t_1 = beta_1 * (1.0 - 0.5 * tf.pow(decay, next_step))
    u_product_t = extra[0]
    u_product_t_1 = u_product_t * u_t_1
    beta_2_power = tf.pow(beta_2, local_step)
    m = s[0] + (g - s[0]) * (1 - beta_1)
    v = s[1] + (tf.square(g) - s[1]) * (1 - beta_2)
    m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product_t)
    v_hat = v / (1 - beta_2_power)
    return p - (m_hat * lr) / (tf.sqrt(v_hat) + h["epsilon"]), [m, v]


UPDATES: dict[str, Callable[..., Any]] = {
    "SGD": _sgd,
    "Adagrad": _adagrad,
    "RMSprop": _rmsprop,
    "Adadelta": _adadelta,
    "Adam": _adam,
    "AdamW": _adam,
    "Nadam": _nadam,
}


# --- learning-rate schedules

# Per schedule class, the constructor arguments that vary between trials (inputs);
# the rest are part of the family.
_SCHEDULE_INPUTS = {
    "ExponentialDecay": ("initial_learning_rate", "decay_steps", "decay_rate"),
    "CosineDecay": ("initial_learning_rate", "decay_steps", "warmup_target", "warmup_steps"),
    "CosineDecayRestarts": ("initial_learning_rate", "first_decay_steps"),
}


def schedule_structure(lr: float | ScheduleSpec, inputs: Inputs) -> tuple[Any, ...] | None:
    if not isinstance(lr, ScheduleSpec):
        inputs["learning_rate"] = float(lr)
        return None
    if lr.name not in _SCHEDULE_INPUTS:
        raise Unsupported(f"schedule {lr.name}")
    varying = _SCHEDULE_INPUTS[lr.name]
    fixed = []
    for key, value in sorted(lr.options.items()):
        if key in varying and value is not None:
            inputs[f"schedule/{key}"] = float(value)
        else:
            fixed.append((key, value))
    return (lr.name, tuple(fixed), tuple(k for k in varying if lr.options.get(k) is not None))


def learning_rate(structure: tuple[Any, ...] | None, it: Any, h: Mapping[str, Any]) -> Any:
    """The step's learning rate: the input, or Keras' own schedule object run on tensor arguments."""
    import keras

    if structure is None:
        return h["learning_rate"]
    name, fixed, varying = structure
    # Placeholder numbers pass the constructor's checks; the tensors replace them before the call.
    schedule = getattr(keras.optimizers.schedules, name)(**dict(fixed), **{k: 1 for k in varying})
    for key in varying:
        setattr(schedule, key, h[f"schedule/{key}"])
    return schedule(it)
