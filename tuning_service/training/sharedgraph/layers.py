"""The Keras layers the shared graph runs: each kind's structure, initial weights and forward pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Keras' SeedGenerator keeps int64 state and hands stateless ops int32 seeds.
_INT32_SEED_MOD = 2**31 - 2


class Unsupported(Exception):
    """The network uses something the shared graph does not reproduce exactly."""


Regularizer = tuple[bool, bool]  # (has L1, has L2): which terms Keras' L1L2 adds
# A layer's per-trial numbers (rates, regularization factors, dropout seeds) by input name.
Inputs = dict[str, float]


@dataclass
class Step:
    """What one forward pass sees beside the tensors: training or not, and the step number."""

    training: bool
    step: Any  # int64 scalar: training batches run so far (Keras' optimizer iterations)
    losses: list[Any]  # activity-regularization terms, appended in layer order


class LayerOp:
    """How one Keras layer kind runs in the shared graph.

    A subclass is a frozen dataclass of what shapes the graph (its structure); the
    numbers that vary between trials go into the trial's inputs under ``f"{i}/..."``,
    ``i`` being the layer's index. ``params`` and ``buffers`` count its trainable
    weights and its other state (batch norm's moving statistics).
    """

    buffers = 0

    @property
    def params(self) -> int:
        """Trainable weights of the layer (none by default)."""
        return 0

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> LayerOp:
        """The op of ``layer``; its per-trial numbers go into ``inputs``. Unsupported if it cannot."""
        return cls()

    @staticmethod
    def init(layer: Any, shape: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
        """Initial weights and buffers for input ``shape``, as the Keras layer's ``build`` makes them."""
        return [], []

    def weight_penalties(self, i: int) -> list[tuple[Regularizer, str]]:
        """Regularizers of the weights, in weight order, with their inputs' name prefix."""
        return []

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        """The layer's output and its buffers after the call."""
        raise NotImplementedError


def _regularizer(reg: Any, name: str, inputs: Inputs) -> Regularizer:
    """The structure of a Keras L1L2 regularizer; its factors go into ``inputs``."""
    import keras

    if reg is None:
        return (False, False)
    if type(reg) is not keras.regularizers.L1L2:
        raise Unsupported(f"regularizer {type(reg).__name__}")
    l1, l2 = float(reg.l1), float(reg.l2)
    if l1 != 0.0:
        inputs[f"{name}_l1"] = l1
    if l2 != 0.0:
        inputs[f"{name}_l2"] = l2
    return (l1 != 0.0, l2 != 0.0)


def penalty(kind: Regularizer, name: str, x: Any, inputs: Mapping[str, Any]) -> Any:
    """Keras' L1L2.__call__ on ``x``, its factors taken from the trial's inputs."""
    import tensorflow as tf

    value = tf.constant(0.0, dtype=x.dtype)
    if kind[0]:
        value += inputs[f"{name}_l1"] * tf.reduce_sum(tf.abs(x))
    if kind[1]:
        value += inputs[f"{name}_l2"] * tf.reduce_sum(tf.square(x))
    return value


def _activity_penalty(kind: Regularizer, i: int, x: Any, inputs: Mapping[str, Any], step: Step) -> None:
    """Keras' activity regularization of layer ``i``'s output: its penalty over the batch size."""
    import tensorflow as tf

    if kind != (False, False):
        value = penalty(kind, f"{i}/activity", x, inputs)
        step.losses.append(tf.math.divide_no_nan(value, tf.cast(tf.shape(x)[0], value.dtype)))


def _activation_name(fn: Any) -> str:
    import keras

    name = keras.activations.serialize(fn)
    if not isinstance(name, str) or keras.activations.get(name) is not fn:
        raise Unsupported(f"activation {fn!r}")
    return name


def _activate(name: str, x: Any) -> Any:
    import keras

    # Keras' own functions: its sigmoid and softmax remember their logits, which its
    # crossentropy losses then use, as they do in a compiled model.
    return keras.activations.get(name)(x)


@dataclass(frozen=True)
class DenseOp(LayerOp):
    activation: str
    use_bias: bool
    kernel_reg: Regularizer
    bias_reg: Regularizer
    activity_reg: Regularizer

    @property
    def params(self) -> int:
        return 2 if self.use_bias else 1

    buffers = 0

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> DenseOp:
        if (
            getattr(layer, "lora_rank", None)
            or getattr(layer, "quantization_mode", None)
            or layer.kernel_constraint
            or layer.bias_constraint
        ):
            raise Unsupported("Dense with LoRA, constraints or quantization")
        return cls(
            _activation_name(layer.activation),
            layer.use_bias,
            _regularizer(layer.kernel_regularizer, f"{i}/kernel", inputs),
            _regularizer(layer.bias_regularizer, f"{i}/bias", inputs),
            _regularizer(layer.activity_regularizer, f"{i}/activity", inputs),
        )

    @staticmethod
    def init(layer: Any, shape: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
        kernel = layer.kernel_initializer((shape[-1], layer.units), dtype="float32")
        params = (
            [kernel, layer.bias_initializer((layer.units,), dtype="float32")] if layer.use_bias else [kernel]
        )
        return params, []

    def weight_penalties(self, i: int) -> list[tuple[Regularizer, str]]:
        return [(self.kernel_reg, f"{i}/kernel"), (self.bias_reg, f"{i}/bias")][: self.params]

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        x = tf.matmul(x, params[0])
        if self.use_bias:
            x = tf.add(x, params[1])
        x = _activate(self.activation, x)
        _activity_penalty(self.activity_reg, i, x, inputs, step)
        return x, buffers


@dataclass(frozen=True)
class BatchNormOp(LayerOp):
    axis: int
    momentum: float
    epsilon: float
    center: bool
    scale: bool

    buffers = 2  # moving mean, moving variance

    @property
    def params(self) -> int:
        return int(self.center) + int(self.scale)

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> BatchNormOp:
        if (
            layer.renorm
            or layer.synchronized
            or layer.beta_regularizer
            or layer.gamma_regularizer
            or layer.beta_constraint
            or layer.gamma_constraint
        ):
            raise Unsupported("BatchNormalization with renorm, sync, regularizers or constraints")
        return cls(layer.axis, float(layer.momentum), float(layer.epsilon), layer.center, layer.scale)

    @staticmethod
    def init(layer: Any, shape: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
        size = (shape[layer.axis],)
        params = ([layer.gamma_initializer(size, dtype="float32")] if layer.scale else []) + (
            [layer.beta_initializer(size, dtype="float32")] if layer.center else []
        )
        buffers = [
            layer.moving_mean_initializer(size, dtype="float32"),
            layer.moving_variance_initializer(size, dtype="float32"),
        ]
        return params, buffers

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        from keras import ops

        gamma = params[0] if self.scale else None
        beta = params[int(self.scale)] if self.center else None
        moving_mean, moving_variance = buffers
        if step.training:
            axes = [a for a in range(len(x.shape)) if a != self.axis % len(x.shape)]
            mean, variance = ops.moments(x, axes=axes)
            buffers = [
                moving_mean * self.momentum + mean * (1.0 - self.momentum),
                moving_variance * self.momentum + variance * (1.0 - self.momentum),
            ]
        else:
            mean, variance = moving_mean, moving_variance
        x = ops.batch_normalization(
            x, mean=mean, variance=variance, axis=self.axis, offset=beta, scale=gamma, epsilon=self.epsilon
        )
        return x, buffers


@dataclass(frozen=True)
class ActivationOp(LayerOp):
    activation: str

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> ActivationOp:
        return cls(_activation_name(layer.activation))

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        return _activate(self.activation, x), buffers


def _dropout_seed(layer: Any, i: int, inputs: Inputs) -> None:
    """A dropout layer's rate and the seed its SeedGenerator drew when the layer was made."""
    if layer.noise_shape is not None:
        raise Unsupported("dropout with a noise_shape")
    rate = float(layer.rate)
    inputs[f"{i}/rate"] = rate
    inputs[f"{i}/seed"] = int(layer.seed_generator.state.numpy()[0])


def _stateless_seed(inputs: Mapping[str, Any], i: int, step: Step) -> Any:
    """The seed Keras hands a stateless random op on a dropout layer's ``step``-th call."""
    import tensorflow as tf

    state = tf.stack([inputs[f"{i}/seed"], step.step])
    return tf.cast(tf.math.floormod(state, _INT32_SEED_MOD), tf.int32)


@dataclass(frozen=True)
class DropoutOp(LayerOp):
    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> DropoutOp:
        _dropout_seed(layer, i, inputs)
        if not 0.0 < layer.rate < 1.0:
            raise Unsupported(f"dropout rate {layer.rate}")
        # tf.nn's stateless dropout scales by a Python-computed 1 / (1 - rate).
        inputs[f"{i}/scale"] = 1 / (1 - float(layer.rate))
        return cls()

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        if not step.training:
            return x, buffers
        kept = tf.random.stateless_uniform(tf.shape(x), seed=_stateless_seed(inputs, i, step), dtype=x.dtype)
        x = tf.where(kept >= inputs[f"{i}/rate"], x * inputs[f"{i}/scale"], tf.constant(0, dtype=x.dtype))
        return x, buffers


@dataclass(frozen=True)
class AlphaDropoutOp(LayerOp):
    params = 0
    buffers = 0
    # SELU's constants, as Keras' AlphaDropout writes them.
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> AlphaDropoutOp:
        _dropout_seed(layer, i, inputs)
        rate = float(layer.rate)
        if not 0.0 < rate < 1.0:
            raise Unsupported(f"alpha dropout rate {rate}")
        a = ((1 - rate) * (1 + rate * cls.alpha_p**2)) ** -0.5
        inputs[f"{i}/a"], inputs[f"{i}/b"] = a, -a * cls.alpha_p * rate
        return cls()

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        if not step.training:
            return x, buffers
        noise = tf.random.stateless_uniform(tf.shape(x), seed=_stateless_seed(inputs, i, step), dtype=x.dtype)
        kept = tf.cast(noise >= inputs[f"{i}/rate"], x.dtype)
        x = x * kept + self.alpha_p * (1 - kept)
        return inputs[f"{i}/a"] * x + inputs[f"{i}/b"], buffers


@dataclass(frozen=True)
class ReshapeOp(LayerOp):
    """Flatten (``target`` None) or Reshape: the values are unchanged, only their shape."""

    target: tuple[int, ...] | None

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> ReshapeOp:
        if type(layer).__name__ == "Flatten":
            if layer.data_format != "channels_last":
                raise Unsupported("Flatten of channels_first data")
            return cls(None)
        return cls(tuple(layer.target_shape))

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        rows = tf.shape(x)[:1]
        shape = [-1] if self.target is None else list(self.target)
        return tf.reshape(x, tf.concat([rows, tf.constant(shape, tf.int32)], 0)), buffers


@dataclass(frozen=True)
class Conv2DOp(LayerOp):
    activation: str
    strides: tuple[int, int]
    padding: Literal["valid", "same"]  # what Keras' Conv2D accepts
    dilation_rate: tuple[int, int]
    use_bias: bool
    kernel_reg: Regularizer
    bias_reg: Regularizer
    activity_reg: Regularizer

    buffers = 0
    params = property(lambda self: 2 if self.use_bias else 1)

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> Conv2DOp:
        if layer.groups != 1 or layer.data_format != "channels_last" or getattr(layer, "lora_rank", None):
            raise Unsupported("Conv2D with groups, channels_first data or LoRA")
        if layer.kernel_constraint or layer.bias_constraint:
            raise Unsupported("Conv2D with constraints")
        return cls(
            _activation_name(layer.activation),
            tuple(layer.strides),
            layer.padding,
            tuple(layer.dilation_rate),
            layer.use_bias,
            _regularizer(layer.kernel_regularizer, f"{i}/kernel", inputs),
            _regularizer(layer.bias_regularizer, f"{i}/bias", inputs),
            _regularizer(layer.activity_regularizer, f"{i}/activity", inputs),
        )

    @staticmethod
    def init(layer: Any, shape: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
        kernel = layer.kernel_initializer((*layer.kernel_size, shape[-1], layer.filters), dtype="float32")
        bias = [layer.bias_initializer((layer.filters,), dtype="float32")] if layer.use_bias else []
        return [kernel, *bias], []

    def weight_penalties(self, i: int) -> list[tuple[Regularizer, str]]:
        return [(self.kernel_reg, f"{i}/kernel"), (self.bias_reg, f"{i}/bias")][: self.params]

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        # What keras.ops.conv runs for 2-D channels-last data (it would pick XLA when it
        # cannot see the kernel's channel count).
        x = tf.nn.convolution(
            x,
            params[0],
            list(self.strides),
            "SAME" if self.padding == "same" else "VALID",
            data_format="NHWC",
            dilations=self.dilation_rate,
        )
        if self.use_bias:
            x = tf.add(x, tf.reshape(params[1], (1, 1, 1, -1)))
        x = _activate(self.activation, x)
        _activity_penalty(self.activity_reg, i, x, inputs, step)
        return x, buffers


@dataclass(frozen=True)
class MaxPool2DOp(LayerOp):
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str

    @classmethod
    def describe(cls, layer: Any, i: int, inputs: Inputs) -> MaxPool2DOp:
        if layer.data_format != "channels_last":
            raise Unsupported("MaxPooling2D of channels_first data")
        return cls(tuple(layer.pool_size), tuple(layer.strides), layer.padding)

    def forward(self, i: int, params: list[Any], buffers: list[Any], x: Any, inputs: Any, step: Step) -> Any:
        import tensorflow as tf

        return tf.nn.max_pool(
            x, list(self.pool_size), list(self.strides), self.padding.upper(), "NHWC"
        ), buffers


# Keras layer class name -> the op that reproduces it.
LAYER_OPS: dict[str, Any] = {
    "Dense": DenseOp,
    "BatchNormalization": BatchNormOp,
    "Activation": ActivationOp,
    "Dropout": DropoutOp,
    "AlphaDropout": AlphaDropoutOp,
    "Flatten": ReshapeOp,
    "Reshape": ReshapeOp,
    "Conv2D": Conv2DOp,
    "MaxPooling2D": MaxPool2DOp,
}
