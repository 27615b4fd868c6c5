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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tuning_service.errors import InputError
from tuning_service.job import InputSpec
from tuning_service.modelcache import REUSABLE

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
    from tuning_service.registry import did_you_mean

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


def _constant(lr: float, cfg: Mapping[str, Any]) -> Any:
    return lr


def _step(lr: float, cfg: Mapping[str, Any]) -> Any:
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        lr,
        decay_steps=int(cfg.get("decay_steps", 1000)),
        decay_rate=float(cfg.get("decay_rate", 0.5)),
        staircase=True,
    )


def _exponential(lr: float, cfg: Mapping[str, Any]) -> Any:
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=int(cfg.get("decay_steps", 1000)), decay_rate=float(cfg.get("decay_rate", 0.9))
    )


def _cosine_restarts(lr: float, cfg: Mapping[str, Any]) -> Any:
    import keras

    return keras.optimizers.schedules.CosineDecayRestarts(lr, int(cfg.get("decay_steps", 1000)))


def _one_cycle(lr: float, cfg: Mapping[str, Any]) -> Any:
    import keras

    steps = int(cfg.get("decay_steps", 1000))
    # 1-cycle: warm up from lr/10 to lr over the first half, cosine back down after.
    return keras.optimizers.schedules.CosineDecay(
        lr / 10, decay_steps=steps // 2, warmup_target=lr, warmup_steps=steps // 2, alpha=0.01
    )


SCHEDULES: dict[str, Callable[[float, Mapping[str, Any]], Any]] = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "cosine_restarts": _cosine_restarts,
    "one_cycle": _one_cycle,
}


# --- optimizers ------------------------------------------------------------------------------


def _opt(cls_name: str, **fixed: Any) -> Callable[[Any, Mapping[str, Any]], Any]:
    """An optimizer factory taking the learning rate and the keys its class accepts."""
    extra_keys = {
        "SGD": ("momentum",),
        "RMSprop": ("momentum",),
        "Adam": ("beta_1",),
        "Nadam": ("beta_1",),
        "AdamW": ("beta_1", "weight_decay"),
    }.get(cls_name, ())

    def make(lr: Any, cfg: Mapping[str, Any]) -> Any:
        import keras

        kwargs = {k: float(cfg[k]) for k in extra_keys if cfg.get(k) is not None}
        return getattr(keras.optimizers, cls_name)(learning_rate=lr, **{**kwargs, **fixed})

    return make


OPTIMIZERS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
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


def make_optimizer(cfg: Mapping[str, Any]) -> Any:
    """Optimizer named by ``cfg['optimizer']`` with its learning-rate schedule."""
    name = _choose("optimizer", str(cfg.get("optimizer", "adam")), tuple(OPTIMIZERS))
    schedule = _choose("lr_schedule", str(cfg.get("lr_schedule", "constant")), tuple(SCHEDULES))
    lr = SCHEDULES[schedule](float(cfg.get("learning_rate", 1e-3)), cfg)
    return OPTIMIZERS[name](lr, cfg)


# --- layers ----------------------------------------------------------------------------------


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


def dense_stack(x: Any, cfg: Mapping[str, Any]) -> Any:
    """Hidden Dense layers with activation, init, regularizers, batch norm and dropout."""
    import keras

    activation, initializer = activation_and_initializer(cfg)
    batch_norm = bool(cfg.get("batch_norm", False))
    dropout, alpha_dropout = (
        float(cfg.get("dropout", 0.0) or 0.0),
        float(cfg.get("alpha_dropout", 0.0) or 0.0),
    )
    for units in layer_units(cfg):
        x = keras.layers.Dense(
            units,
            activation=None if batch_norm else activation,
            kernel_initializer=initializer,
            kernel_regularizer=regularizer(cfg, "kernel"),
            bias_regularizer=regularizer(cfg, "bias"),
            activity_regularizer=regularizer(cfg, "activity"),
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(activation)(x)
        if alpha_dropout:
            x = keras.layers.AlphaDropout(alpha_dropout)(x)
        elif dropout:
            x = keras.layers.Dropout(dropout)(x)
    return x


def output_head(x: Any, spec: InputSpec) -> tuple[Any, str, list[str]]:
    """Output layer, loss and metrics that fit the task."""
    import keras

    if spec.task == "binary":
        return keras.layers.Dense(1, activation="sigmoid")(x), "binary_crossentropy", ["accuracy"]
    if spec.task == "multiclass":
        out = keras.layers.Dense(int(spec.num_classes or 2), activation="softmax")(x)
        return out, "sparse_categorical_crossentropy", ["accuracy"]
    return keras.layers.Dense(1)(x), "mse", ["mae"]


def compile_model(inputs: Any, x: Any, cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """Attach the task's head and compile with the configured optimizer."""
    import keras

    outputs, loss, metrics = output_head(x, spec)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=cfg.get("loss", loss),
        metrics=metrics,
        # Several batches per call into TensorFlow: for models this small, Python's per-batch
        # dispatch costs more than the batch itself. The updates are the same.
        steps_per_execution=int(cfg.get("steps_per_execution", STEPS_PER_EXECUTION)),
    )
    # Every configuration value this builder turns into a graph constant is in `cfg`, so a
    # worker may hand this model's traced graph to a later trial (tuning_service.modelcache).
    setattr(model, REUSABLE, True)
    return model


def build_mlp(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """A multilayer perceptron over flattened inputs: the tutorials' model family."""
    import keras

    inputs = keras.Input(shape=spec.shape)
    x = keras.layers.Flatten()(inputs) if len(spec.shape) > 1 else inputs
    return compile_model(inputs, dense_stack(x, cfg), cfg, spec)


def build_cnn(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
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
    inputs = keras.Input(shape=spec.shape)
    x = keras.layers.Reshape((*spec.shape, 1))(inputs) if len(spec.shape) == 2 else inputs
    size = min(spec.shape[:2])
    filters, kernel = int(cfg.get("filters", 32)), int(cfg.get("kernel_size", 3))
    for block in range(int(cfg.get("conv_layers", 2))):
        x = keras.layers.Conv2D(
            filters * 2**block,
            kernel,
            padding="same",
            activation=activation,
            kernel_initializer=initializer,
            kernel_regularizer=regularizer(cfg, "kernel"),
        )(x)
        if size >= 2:
            x = keras.layers.MaxPooling2D(2)(x)
            size //= 2
    x = keras.layers.Flatten()(x)
    return compile_model(inputs, dense_stack(x, {"layers": 1, **cfg}), cfg, spec)


ARCHITECTURES: dict[str, Callable[[Mapping[str, Any], InputSpec], Any]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(cfg: Mapping[str, Any], spec: InputSpec) -> Any:
    """Build the architecture named by ``cfg['architecture']`` (default: mlp)."""
    name = _choose("architecture", str(cfg.get("architecture", "mlp")), tuple(ARCHITECTURES))
    return ARCHITECTURES[name](cfg, spec)
