"""The job API's model vocabulary: what job files and job modules import to build their models.

`tuning_service.training.models` holds the code; this module keeps the import path jobs use
(``from tuning_service.models import build_mlp``) and re-exports its public names only.
"""

from __future__ import annotations

from tuning_service.training.models import (
    ACTIVATIONS,
    ARCHITECTURES,
    AUTO_INITIALIZER,
    CONFIG_KEYS,
    INITIALIZERS,
    NETWORKS,
    OPTIMIZERS,
    SCHEDULES,
    STEPS_PER_EXECUTION,
    Network,
    OptimizerSpec,
    ScheduleSpec,
    activation_and_initializer,
    any_network,
    build_cnn,
    build_mlp,
    build_model,
    check_config_keys,
    cnn_network,
    dense_stack,
    layer_units,
    make_optimizer,
    mlp_network,
    network,
    network_of,
    optimizer_spec,
    output_head,
    regularizer,
)

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "AUTO_INITIALIZER",
    "CONFIG_KEYS",
    "INITIALIZERS",
    "NETWORKS",
    "OPTIMIZERS",
    "SCHEDULES",
    "STEPS_PER_EXECUTION",
    "Network",
    "OptimizerSpec",
    "ScheduleSpec",
    "activation_and_initializer",
    "any_network",
    "build_cnn",
    "build_mlp",
    "build_model",
    "check_config_keys",
    "cnn_network",
    "dense_stack",
    "layer_units",
    "make_optimizer",
    "mlp_network",
    "network",
    "network_of",
    "optimizer_spec",
    "output_head",
    "regularizer",
]
