"""The shared Keras model vocabulary every job builds from: layers, optimizers, schedules.

Config keys (all optional; a job's defaults and search space fill them):

- ``layers`` (int), ``units`` (int) or ``units_1``, ``units_2``, ... per layer
- ``activation``: sigmoid, tanh, relu, elu, selu
- ``initializer``: glorot_uniform, he_normal, he_uniform, lecun_normal, or auto (the
  activation's own: He for ReLU/ELU, LeCun for SELU, Glorot for sigmoid/tanh)
- ``batch_norm`` (bool), ``dropout`` (rate), ``alpha_dropout`` (rate, for SELU nets)
- ``kernel_l1``, ``kernel_l2``, ``bias_l1``, ``bias_l2``, ``activity_l1``, ``activity_l2``
- ``optimizer``: see `OPTIMIZERS`; ``learning_rate``; ``momentum``; ``beta_1``; ``weight_decay``
- ``lr_schedule``: see `SCHEDULES`; ``decay_steps``, ``decay_rate``
- ``architecture``: see `ARCHITECTURES` (mlp, cnn); a CNN also reads ``conv_layers``,
  ``filters`` (doubled per block) and ``kernel_size``

Each builder first describes its model as a `Network` (its Keras layers in call order,
loss, metrics and optimizer), then wires and compiles it. The trainable can train a
`Network` without wiring it (`tuning_service.training.sharedgraph`): every trial whose network
differs only in sizes then runs one traced graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuning_service.core.errors import InputError
from tuning_service.core.job import BuildModel, InputSpec

ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "selu")
INITIALIZERS = ("glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "auto")
# The initializer each activation was designed with (He et al., Klambauer et al., Glorot).
AUTO_INITIALIZER = {
    "relu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
    "sigmoid": "glorot_uniform",
    "tanh": "glorot_uniform",
}


# Every key a model configuration may hold; ``units_<N>`` sets one layer's width.
# ``batch_size`` and ``patience`` are read by the trainable, the rest by the builders.
CONFIG_KEYS = (
    "architecture",
    "layers",
    "units",
    "activation",
    "initializer",
    "batch_norm",
    "dropout",
    "alpha_dropout",
    "kernel_l1",
    "kernel_l2",
    "bias_l1",
    "bias_l2",
    "activity_l1",
    "activity_l2",
    "optimizer",
    "learning_rate",
    "momentum",
    "beta_1",
    "weight_decay",
    "lr_schedule",
    "decay_steps",
    "decay_rate",
    "conv_layers",
    "filters",
    "kernel_size",
    "loss",
    "batch_size",
    "patience",
    "steps_per_execution",
)
# Batches per call into TensorFlow (Keras' `steps_per_execution`), unless a config sets it.
STEPS_PER_EXECUTION = 32


def check_config_keys(keys: list[str], *, where: str) -> None:
    """Refuse a setting no builder reads: a typo would otherwise be silently ignored."""
    from tuning_service.core.registry import did_you_mean

    for key in keys:
        if key in CONFIG_KEYS or re.fullmatch(r"units_[1-9][0-9]*", key):
            continue
        raise InputError(
            f"{where}: unknown model setting {key!r} (accepted: {', '.join(CONFIG_KEYS)}, units_1, units_2, ...)"
            f"{did_you_mean(key, list(CONFIG_KEYS))}"
        )


def _choose(kind: str, value: str, accepted: Mapping[str, Any] | tuple[str, ...]) -> str:
    if value not in accepted:
        raise InputError(f"unknown {kind} {value!r}; choose one of: {', '.join(accepted)}")
    return value


# --- learning-rate schedules -------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A Keras learning-rate schedule by class name and constructor arguments."""

    name: str
    options: Mapping[str, Any]

    def to_keras(self) -> Any:
        import keras

        return getattr(keras.optimizers.schedules, self.name)(**self.options)


def _constant(lr: float, cfg: Mapping[str, Any]) -> float | ScheduleSpec:
    return lr


def _step(lr: float, cfg: Mapping[str, Any]) -> float | ScheduleSpec:
    return ScheduleSpec(
        "ExponentialDecay",
        {
            "initial_learning_rate": lr,
            "decay_steps": int(cfg.get("decay_steps", 1000)),
            "decay_rate": float(cfg.get("decay_rate", 0.5)),
            "staircase": True,
        },
    )


def _exponential(lr: float, cfg: Mapping[str, Any]) -> float | ScheduleSpec:
    return ScheduleSpec(
        "ExponentialDecay",
        {
            "initial_learning_rate": lr,
            "decay_steps": int(cfg.get("decay_steps", 1000)),
            "decay_rate": float(cfg.get("decay_rate", 0.9)),
        },
    )


def _cosine_restarts(lr: float, cfg: Mapping[str, Any]) -> float | ScheduleSpec:
    return ScheduleSpec(
        "CosineDecayRestarts",
        {"initial_learning_rate": lr, "first_decay_steps": int(cfg.get("decay_steps", 1000))},
    )


def _one_cycle(lr: float, cfg: Mapping[str, Any]) -> float | ScheduleSpec:
    steps = int(cfg.get("decay_steps", 1000))
    # 1-cycle: warm up from lr/10 to lr over the first half, cosine back down after.
    return ScheduleSpec(
        "CosineDecay",
        {
            "initial_learning_rate": lr / 10,
            "decay_steps": steps // 2,
            "warmup_target": lr,
            "warmup_steps": steps // 2,
            "alpha": 0.01,
        },
    )


SCHEDULES: dict[str, Callable[[float, Mapping[str, Any]], float | ScheduleSpec]] = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "cosine_restarts": _cosine_restarts,
    "one_cycle": _one_cycle,
}


# --- optimizers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerSpec:
    """A Keras optimizer by class name, its learning rate (a number or a schedule) and its options."""

    name: str
    learning_rate: float | ScheduleSpec
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_keras(self) -> Any:
        import keras

        lr = (
            self.learning_rate.to_keras()
            if isinstance(self.learning_rate, ScheduleSpec)
            else self.learning_rate
        )
        return getattr(keras.optimizers, self.name)(learning_rate=lr, **self.options)


def _opt(cls_name: str, **fixed: Any) -> Callable[[float | ScheduleSpec, Mapping[str, Any]], OptimizerSpec]:
    """An optimizer factory taking the learning rate and the keys its class accepts."""
    extra_keys = {
        "SGD": ("momentum",),
        "RMSprop": ("momentum",),
        "Adam": ("beta_1",),
        "Nadam": ("beta_1",),
        "AdamW": ("beta_1", "weight_decay"),
    }.get(cls_name, ())

    def make(lr: float | ScheduleSpec, cfg: Mapping[str, Any]) -> OptimizerSpec:
        kwargs = {k: float(cfg[k]) for k in extra_keys if cfg.get(k) is not None}
        return OptimizerSpec(cls_name, lr, {**kwargs, **fixed})

    return make


OPTIMIZERS: dict[str, Callable[[float | ScheduleSpec, Mapping[str, Any]], OptimizerSpec]] = {
    "sgd": _opt("SGD"),
    "momentum": _opt("SGD", momentum=0.9),
    "nesterov": _opt("SGD", momentum=0.9, nesterov=True),
    "adagrad": _opt("Adagrad"),
    "rmsprop": _opt("RMSprop"),
    "adadelta": _opt("Adadelta"),
    "adam": _opt("Adam"),
    "nadam": _opt("Nadam"),
    "adamw": _opt("AdamW"),
}


def optimizer_spec(cfg: Mapping[str, Any]) -> OptimizerSpec:
    """The optimizer named by ``cfg['optimizer']`` with its learning-rate schedule."""
    name = _choose("optimizer", str(cfg.get("optimizer", "adam")), tuple(OPTIMIZERS))
    schedule = _choose("lr_schedule", str(cfg.get("lr_schedule", "constant")), tuple(SCHEDULES))
    lr = SCHEDULES[schedule](float(cfg.get("learning_rate", 1e-3)), cfg)
    return OPTIMIZERS[name](lr, cfg)


def make_optimizer(cfg: Mapping[str, Any]) -> Any:
    """Keras optimizer named by ``cfg['optimizer']`` with its learning-rate schedule."""
    return optimizer_spec(cfg).to_keras()


# --- layers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """A vocabulary model before Keras wires it: its layers in call order, loss, metrics, optimizer.

    The layers are constructed (so their initializers have drawn their seeds) but not
    built: `to_keras` wires them into a compiled functional model, and the shared-graph
    engine builds their weights itself. Both give the same initial weights.
    """

    input_shape: tuple[int, ...]
    layers: tuple[Any, ...]
    loss: str
    metrics: tuple[str, ...]
    optimizer: OptimizerSpec
    steps_per_execution: int = STEPS_PER_EXECUTION

    def to_keras(self) -> Any:
        import keras

        inputs = keras.Input(shape=self.input_shape)
        x = inputs
        for layer in self.layers:
            x = layer(x)
        model = keras.Model(inputs, x)
        model.compile(
            optimizer=self.optimizer.to_keras(),
            loss=self.loss,
            metrics=list(self.metrics),
            # Several batches per call into TensorFlow: for models this small, Python's per-batch
            # dispatch costs more than the batch itself. The updates are the same.
            steps_per_execution=self.steps_per_execution,
        )
        return model


def regularizer(cfg: Mapping[str, Any], prefix: str) -> Any:
    """L1/L2 regularizer from ``<prefix>_l1`` / ``<prefix>_l2``, or None when both are zero."""
    import keras

    l1, l2 = float(cfg.get(f"{prefix}_l1", 0.0) or 0.0), float(cfg.get(f"{prefix}_l2", 0.0) or 0.0)
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def layer_units(cfg: Mapping[str, Any]) -> list[int]:
    """Units per hidden layer: ``units_1..units_N`` where given, else ``units`` for each."""
    layers = int(cfg.get("layers", 2))
    return [int(cfg.get(f"units_{i + 1}", cfg.get("units", 64))) for i in range(layers)]


def activation_and_initializer(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """The configured activation and its initializer, ``auto`` resolved."""
    activation = _choose("activation", str(cfg.get("activation", "relu")), ACTIVATIONS)
    initializer = _choose("initializer", str(cfg.get("initializer", "glorot_uniform")), INITIALIZERS)
    return activation, AUTO_INITIALIZER[activation] if initializer == "auto" else initializer


def dense_stack(cfg: Mapping[str, Any]) -> list[Any]:
    """Hidden Dense layers with activation, init, regularizers, batch norm and dropout."""
    import keras

    activation, initializer = activation_and_initializer(cfg)
    batch_norm = bool(cfg.get("batch_norm", False))
    dropout, alpha_dropout = (
        float(cfg.get("dropout", 0.0) or 0.0),
        float(cfg.get("alpha_dropout", 0.0) or 0.0),
    )
    layers: list[Any] = []
    for units in layer_units(cfg):
        layers.append(
            keras.layers.Dense(
                units,
                activation=None if batch_norm else activation,
                kernel_initializer=initializer,
                kernel_regularizer=regularizer(cfg, "kernel"),
                bias_regularizer=regularizer(cfg, "bias"),
                activity_regularizer=regularizer(cfg, "activity"),
            )
        )
        if batch_norm:
            layers += [keras.layers.BatchNormalization(), keras.layers.Activation(activation)]
        if alpha_dropout:
            layers.append(keras.layers.AlphaDropout(alpha_dropout))
        elif dropout:
            layers.append(keras.layers.Dropout(dropout))
    return layers


def output_head(spec: InputSpec) -> tuple[Any, str, tuple[str, ...]]:
    """Output layer, loss and metrics that fit the task."""
    import keras

    if spec.task == "binary":
        return keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy", ("accuracy",)
    if spec.task == "multiclass":
        out = keras.layers.Dense(int(spec.num_classes or 2), activation="softmax")
        return out, "sparse_categorical_crossentropy", ("accuracy",)
    return keras.layers.Dense(1), "mse", ("mae",)


def network(layers: list[Any], cfg: Mapping[str, Any], spec: InputSpec) -> Network:
    """The given hidden layers, the task's head and the configured loss and optimizer."""
    head, loss, metrics = output_head(spec)
    return Network(
        input_shape=tuple(spec.shape),
        layers=(*layers, head),
        loss=str(cfg.get("loss", loss)),
        metrics=metrics,
        optimizer=optimizer_spec(cfg),
        steps_per_execution=int(cfg.get("steps_per_execution", STEPS_PER_EXECUTION)),
    )


def mlp_network(cfg: Mapping[str, Any], spec: InputSpec) -> Network:
    """A multilayer perceptron over flattened inputs: the tutorials' model family."""
    import keras

    flatten = [keras.layers.Flatten()] if len(spec.shape) > 1 else []
    return network([*flatten, *dense_stack(cfg)], cfg, spec)


def cnn_network(cfg: Mapping[str, Any], spec: InputSpec) -> Network:
    """Small convolutional net for images: conv blocks, then the configured Dense stack.

    Each block is a same-padded convolution (filters doubling per block) and a 2x2
    max-pool while the image is still at least 2 pixels wide, so 8x8 digits and
    32x32 CIFAR images both fit. ``layers`` defaults to 1 Dense layer after the convs.
    """
    import keras

    if len(spec.shape) not in (2, 3):
        raise InputError(
            f"architecture 'cnn' needs image inputs (height, width[, channels]), got shape {spec.shape}"
        )
    activation, initializer = activation_and_initializer(cfg)
    layers: list[Any] = [keras.layers.Reshape((*spec.shape, 1))] if len(spec.shape) == 2 else []
    size = min(spec.shape[:2])
    filters, kernel = int(cfg.get("filters", 32)), int(cfg.get("kernel_size", 3))
    for block in range(int(cfg.get("conv_layers", 2))):
        layers.append(
            keras.layers.Conv2D(
                filters * 2**block,
                kernel,
                padding="same",
                activation=activation,
                kernel_initializer=initializer,
                kernel_regularizer=regularizer(cfg, "kernel"),
            )
        )
        if size >= 2:
            layers.append(keras.layers.MaxPooling2D(2))
            size //= 2
    layers.append(keras.layers.Flatten())
    return network([*layers, *dense_stack({"layers": 1, **cfg})], cfg, spec)


ARCHITECTURES: dict[str, Callable[[Mapping[str, Any], InputSpec], Network]] = {
    "mlp": mlp_network,
    "cnn": cnn_network,
}


def any_network(cfg: Mapping[str, Any], spec: InputSpec) -> Network:
    """The network of the architecture named by ``cfg['architecture']`` (default: mlp)."""
    name = _choose("architecture", str(cfg.get("architecture", "mlp")), tuple(ARCHITECTURES))
    return ARCHITECTURES[name](cfg, spec)


def build_mlp(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """A compiled multilayer perceptron (see `mlp_network`)."""
    return mlp_network(cfg, spec).to_keras()


def build_cnn(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """A compiled small CNN (see `cnn_network`)."""
    return cnn_network(cfg, spec).to_keras()


def build_model(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """Build the architecture named by ``cfg['architecture']`` (default: mlp)."""
    return any_network(cfg, spec).to_keras()


# The vocabulary's builders and the networks they compile: a job built by one of them can
# be trained without compiling its models (`network_of`).
NETWORKS: dict[BuildModel, Callable[[Mapping[str, Any], InputSpec], Network]] = {
    build_mlp: mlp_network,
    build_cnn: cnn_network,
    build_model: any_network,
}


def network_of(build: BuildModel) -> Callable[[Mapping[str, Any], InputSpec], Network] | None:
    """The network function behind a vocabulary builder; None for a job's own builder."""
    return NETWORKS.get(build)
