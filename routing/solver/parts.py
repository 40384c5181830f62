"""Independent parts of a problem: vehicles and tasks that never mix can be solved apart.

Buses staff bus stops and teams knock on doors: unless a van can do both, a mixed-fleet day is
two problems that share only depots and labs. Solving them apart, one per core, halves each
search space and uses both cores for the whole budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from routing.model import Problem


def independent_parts(problem: Problem, task_ids: Sequence[str], *, at_most: int) -> list[tuple[list[str], list[str]]]:
    """Groups of (vehicle ids, task ids) with no vehicle able to serve a task of another group,
    merged down to ``at_most`` groups of similar size. Vehicles that can serve nothing are left out.
    """
    parent = list(range(len(problem.vehicles) + len(task_ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tasks = [problem.task(t) for t in task_ids]
    offset = len(problem.vehicles)
    for v, vehicle in enumerate(problem.vehicles):
        for t, task in enumerate(tasks):
            if vehicle.may_serve(task):
                parent[root(v)] = root(offset + t)
    groups: dict[int, tuple[list[str], list[str]]] = {}
    for t, task_id in enumerate(task_ids):
        groups.setdefault(root(offset + t), ([], []))[1].append(task_id)
    for v, vehicle in enumerate(problem.vehicles):
        if root(v) in groups:
            groups[root(v)][0].append(vehicle.id)
    parts = sorted(groups.values(), key=lambda g: -len(g[1]))
    # Largest first into the lightest bin: a few parts per core at most.
    bins: list[tuple[list[str], list[str]]] = [([], []) for _ in range(max(1, min(at_most, len(parts))))]
    for vehicle_ids, ids in parts:
        lightest = min(bins, key=lambda b: len(b[1]))
        lightest[0].extend(vehicle_ids)
        lightest[1].extend(ids)
    return [b for b in bins if b[1]]
