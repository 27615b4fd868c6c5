"""Grid search: every distinct point of the space, each run once."""

from __future__ import annotations

from typing import Annotated, Any

from tuning_service.core.registry import AtLeast
from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan
from tuning_service.raytune.searchers.points import same_point


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
    points: Annotated[int, AtLeast(1)] | None = None,
) -> SearchPlan:
    """Enumerate the grid ourselves so conditional parameters add no duplicate points.

    ``points_to_evaluate`` run first; grid points equal to one of them are not run twice.
    ``points`` spreads that many values over each range without grid values (log-spaced
    on a log range; integers rounded, repeats dropped) instead of refusing it.
    """
    from ray.tune.search.basic_variant import BasicVariantGenerator

    first = list(points_to_evaluate or [])
    grid = first + [p for p in space.grid_points(points) if not any(same_point(space, p, q) for q in first)]
    # Tune fills keys a point leaves out (inactive conditional ones) from the space;
    # `Space.effective` drops them again before the model sees the config.
    return SearchPlan(
        BasicVariantGenerator(points_to_evaluate=grid, max_concurrent=max_concurrent or 0),
        space.to_ray(),
        num_samples=len(grid),
    )
