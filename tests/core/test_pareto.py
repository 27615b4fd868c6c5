"""Pareto logic: the front is non-dominated and dominates everything off it; crowding and order."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tuning_service.core.pareto import crowding_distance, dominates, front, non_dominated_sort, nsga2_order

# Small integers: ties and duplicates happen often, which is where sorting goes wrong.
points = st.integers(1, 3).flatmap(
    lambda m: st.lists(st.tuples(*[st.integers(0, 5)] * m), min_size=0, max_size=25)
)


@settings(max_examples=150, deadline=None)
@given(points)
def test_no_front_member_is_dominated_and_every_other_point_is(pts):
    members = set(front(pts))
    for i in members:
        assert not any(dominates(pts[j], pts[i]) for j in range(len(pts)))
    for i in set(range(len(pts))) - members:
        assert any(dominates(pts[j], pts[i]) for j in members)


@settings(max_examples=150, deadline=None)
@given(points)
def test_sorting_partitions_the_points_and_each_front_is_beaten_only_by_earlier_ones(pts):
    fronts = non_dominated_sort(pts)
    assert sorted(i for f in fronts for i in f) == list(range(len(pts)))
    earlier: set[int] = set()
    for members in fronts:
        for i in members:
            beaters = {j for j in range(len(pts)) if dominates(pts[j], pts[i])}
            assert beaters <= earlier
            assert not earlier or beaters  # a point on a later front is beaten by someone
        earlier |= set(members)
    assert sorted(nsga2_order(pts)) == list(range(len(pts)))


def test_crowding_gives_the_boundary_infinity_and_the_middle_its_neighbours_gap():
    pts = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    crowd = crowding_distance(pts)
    assert crowd[0] == crowd[3] == math.inf
    # (3 - 0) / 4 for the first objective plus (4 - 1) / 4 for the second.
    assert crowd[1] == 1.5 and crowd[2] == 1.5


def test_nsga2_order_ranks_by_front_then_spread():
    pts = [(2.0, 2.0), (0.0, 4.0), (1.0, 2.9), (4.0, 0.0), (5.0, 5.0)]
    order = nsga2_order(pts)
    assert order[:2] == [1, 3]  # the first front's boundary points
    assert order[-1] == 4  # dominated by all
