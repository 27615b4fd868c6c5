"""The job API: the search space (`Choice`, `Float`, `Int`, ...) of `tuning_service.core.space`."""

from __future__ import annotations

from tuning_service.core.space import (
    MAX_GRID_POINTS,
    MAX_INT_GRID,
    Choice,
    Fixed,
    Float,
    Int,
    Param,
    Scalar,
    Space,
    param_from_data,
)

__all__ = [
    "MAX_GRID_POINTS",
    "MAX_INT_GRID",
    "Choice",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "Scalar",
    "Space",
    "param_from_data",
]
