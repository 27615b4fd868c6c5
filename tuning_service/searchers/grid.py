"""Grid search: every distinct point of the space, each run once."""

from __future__ import annotations

from tuning_service.searchers import SearchPlan
from tuning_service.space import Space


def build(space: Space, *, seed: int) -> SearchPlan:
    """Enumerate the grid ourselves so conditional parameters add no duplicate points."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    points = space.grid_points()
    # Tune fills keys a point leaves out (inactive conditional ones) from the space;
    # `Space.effective` drops them again before the model sees the config.
    return SearchPlan(
        BasicVariantGenerator(points_to_evaluate=points), space.to_ray(), num_samples=len(points)
    )
