"""Pareto logic over minimised objective vectors: dominance, non-dominated sorting, crowding distance.

Every vector here is to be minimised in each coordinate (a maximised objective enters
negated, see `objectives.Objective.minimised`). Pure Python: the fronts of a sweep are tens
to thousands of points, and the store, the report and the MO-ASHA scheduler all call it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["crowding_distance", "dominates", "front", "non_dominated_sort", "nsga2_order"]

Vector = Sequence[float]


def dominates(a: Vector, b: Vector) -> bool:
    """Whether ``a`` is no worse than ``b`` in every objective and better in at least one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated_sort(points: Sequence[Vector]) -> list[list[int]]:
    """Indices of ``points`` by Pareto front: the first front is dominated by nothing, each next one
    only by members of the fronts before it (Deb et al. 2002's fast non-dominated sort, O(M N^2))."""
    n = len(points)
    beats: list[list[int]] = [[] for _ in range(n)]
    beaten_by = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if beaten_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def front(points: Sequence[Vector]) -> list[int]:
    """Indices of the non-dominated points (the Pareto front), in input order."""
    fronts = non_dominated_sort(points)
    return fronts[0] if fronts else []


def crowding_distance(points: Sequence[Vector]) -> list[float]:
    """NSGA-II's crowding distance of each point within its own set: the boundary points of
    each objective get infinity, the others the sum over objectives of their neighbours'
    normalised gap. Larger means more isolated, so better for keeping the front spread."""
    n = len(points)
    if n == 0:
        return []
    distance = [0.0] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        low, high = points[order[0]][m], points[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, n - 1):
            distance[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (high - low)
    return distance


def nsga2_order(points: Sequence[Vector]) -> list[int]:
    """Indices of ``points`` best first: by front, then by crowding distance within the front
    (larger first), then by index (earlier first), as NSGA-II's survivor selection ranks them."""
    order: list[int] = []
    for members in non_dominated_sort(points):
        crowd = crowding_distance([points[i] for i in members])
        order += [i for _, i in sorted(zip(crowd, members, strict=True), key=lambda p: (-p[0], p[1]))]
    return order
