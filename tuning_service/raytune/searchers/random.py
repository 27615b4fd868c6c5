"""Random search: independent draws from the space, reproducible by seed."""

from __future__ import annotations

from typing import Any

from tuning_service.core.space import Space
from tuning_service.raytune.searchers import SearchPlan


def build(
    space: Space,
    *,
    seed: int,
    points_to_evaluate: list[dict[str, Any]] | None = None,
    max_concurrent: int | None = None,
) -> SearchPlan:
    """Ray's variant generator, seeded; ``points_to_evaluate`` are its first trials."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return SearchPlan(
        BasicVariantGenerator(
            points_to_evaluate=points_to_evaluate or None,
            random_state=seed,
            max_concurrent=max_concurrent or 0,
        ),
        space.to_ray(),
    )
