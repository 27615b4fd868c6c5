"""Random search: independent draws from the space, reproducible by seed."""

from __future__ import annotations

from tuning_service.searchers import SearchPlan
from tuning_service.space import Space


def build(space: Space, *, seed: int) -> SearchPlan:
    """Ray's variant generator, seeded."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return SearchPlan(BasicVariantGenerator(random_state=seed), space.to_ray())
