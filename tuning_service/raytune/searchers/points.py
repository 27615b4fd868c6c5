"""Configs to evaluate first (warm start), restricted to what the current space can still run."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tuning_service.core.space import Choice, Fixed, Param, Space

log = logging.getLogger(__name__)


def usable_points(space: Space, points: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Complete, valid, distinct points of ``space``, in the order given.

    Points come from earlier sweeps, and the space may have been edited since: keys no
    longer in the space and fixed values are dropped (the space supplies those), inactive conditional
    parameters get a placeholder (HyperOpt needs every key; the model never sees them),
    and a point with an active value the space no longer accepts, or missing one, is
    skipped with a log line rather than failing the sweep.
    """
    usable: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(points, 1):
        point: dict[str, Any] = {}
        problem = None
        for name, param in space.items():
            active = all(point.get(k, _MISSING) in v for k, v in param.when.items())
            if isinstance(param, Fixed):
                continue  # a constant, not searched: Optuna refuses points that name one
            if not active:
                point[name] = raw[name] if name in raw and param.contains(raw[name]) else _placeholder(param)
            elif name not in raw:
                problem = f"it has no value for {name!r}"
                break
            elif not param.contains(raw[name]):
                problem = f"{name}={raw[name]!r} is outside the space"
                break
            else:
                point[name] = raw[name]
        if problem is not None:
            log.info("warm start: skipping point %d (%s): %s", number, dict(raw), problem)
            continue
        key = repr(sorted(space.effective(point).items()))
        if key not in seen:
            seen.add(key)
            usable.append(point)
    return usable


def same_point(space: Space, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two points give the model the same configuration."""
    return space.effective(a) == space.effective(b)


def _placeholder(param: Param) -> Any:
    if isinstance(param, Choice):
        return param.values[0]
    return param.low  # type: ignore[attr-defined]


_MISSING = object()
