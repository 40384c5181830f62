"""Choosing bus stops: which candidates to use so that every demand area is covered.

Residents walk to a stop within their area's walking limit. Stop selection is a capacitated
covering problem solved exactly (or to the time limit) with OR-Tools' CP-SAT before routing:

- cover as many people as possible (every area that has a stop in reach, where stop capacity
  allows: a stop's longest allowed stay bounds the people it can sample);
- then use as few and as cheap stops as possible, each priced by the driving it adds (a round
  trip to its nearest neighbouring stop, depot or lab) plus setting up;
- then keep walks short;
- never two stops of one alternatives group; required stops always.

The chosen stops are then routed like any task, each with its *stand-ins*: other candidates that
could serve exactly the same areas (every one within its walking limit, room for the same
people, no clash of alternatives). The router picks whichever of a chosen stop and its stand-ins
fits its routes best (one of them, never two), so the choice of car park within a compound is made
where the driving is known. An area whose stop no bus can fit in is reported as such after routing.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from routing.model import WALK_DETOUR_FACTOR, BusStop, Problem, swab_tubes
from routing.plan import AreaCoverage, Reason

EARTH_RADIUS_M = 6_371_000.0

STAND_INS = 3
"""Stand-ins per chosen stop at most (the nearest to its areas): each is one more node to route."""

CHOICE_GROUP = "choice:"
"""Group of a chosen stop and its stand-ins in the routed problem: ``"choice:" + chosen stop id``."""


def walk_matrix(problem: Problem) -> NDArray[np.float64]:
    """Walking metres from each demand area (rows) to each bus stop (columns).

    The problem's ``area_walk_m`` when given (along footways), else the straight line times
    ``WALK_DETOUR_FACTOR``.
    """
    if problem.area_walk_m is not None:
        return problem.area_walk_m
    areas = np.radians(np.array([a.location for a in problem.areas], dtype=float).reshape(-1, 2))
    stops = np.radians(np.array([s.location for s in problem.stops], dtype=float).reshape(-1, 2))
    dlon = stops[None, :, 0] - areas[:, None, 0]
    dlat = stops[None, :, 1] - areas[:, None, 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(areas[:, None, 1]) * np.cos(stops[None, :, 1]) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * WALK_DETOUR_FACTOR


@dataclass(frozen=True, slots=True)
class StopChoice:
    """The stops to route (with the people they will sample) and each area's fate.

    ``stand_ins[stop id]`` are candidates that could serve exactly that stop's areas, staffed
    alike; ``stand_in_walk_m[(area id, stop id)]`` the walks to them.
    """

    stops: tuple[BusStop, ...]
    coverage: tuple[AreaCoverage, ...]
    stand_ins: Mapping[str, tuple[BusStop, ...]] = field(default_factory=dict)
    stand_in_walk_m: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @property
    def routed_stops(self) -> tuple[BusStop, ...]:
        """What the router gets: each chosen stop with its stand-ins as one group (one of them is used)."""
        out: list[BusStop] = []
        for stop in self.stops:
            members = (stop, *self.stand_ins.get(stop.id, ()))
            if len(members) == 1:
                out.append(stop)
            else:
                out.extend(replace(m, group=CHOICE_GROUP + stop.id) for m in members)
        return tuple(out)

    def resolved(self, served: Collection[str]) -> StopChoice:
        """The choice once routed: a chosen stop whose stand-in the routes serve is replaced by it,
        and its areas walk there instead."""
        swap = {}
        for stop in self.stops:
            stand_in = next((s for s in self.stand_ins.get(stop.id, ()) if s.id in served), None)
            if stop.id not in served and stand_in is not None:
                swap[stop.id] = stand_in
        coverage = tuple(
            replace(c, stop_id=swap[c.stop_id].id, walk_m=self.stand_in_walk_m[c.area_id, swap[c.stop_id].id])
            if c.stop_id in swap else c
            for c in self.coverage
        )
        return StopChoice(tuple(swap.get(s.id, s) for s in self.stops), coverage)


def stop_capacity(problem: Problem, stop: BusStop) -> int:
    """People a stop can take: its longest allowed stay (or the longest bus shift) through the
    slowest bus's lanes, and no more tubes than the largest rack carries."""
    buses = [v for v in problem.vehicles if v.serves_stops]
    if not buses:
        return 0
    per_person_s = max(v.seconds_per_person / v.lanes for v in buses)
    stay_s = stop.max_dwell_s or max(v.shift.end_s - v.shift.start_s for v in buses)
    by_time = math.inf if per_person_s == 0 else (stay_s - stop.setup_s) / per_person_s
    racks = [v.capacity["tubes"] for v in buses if "tubes" in v.capacity]
    by_tubes = max(racks) * 10 if racks else math.inf
    return int(max(0, min(by_time, by_tubes, 10**9)))


def _stop_costs_s(problem: Problem) -> NDArray[np.float64]:
    """Driving a stop adds, roughly: a round trip to its nearest other stop, depot or lab."""
    buses = [v for v in problem.vehicles if v.serves_stops]
    profile = buses[0].profile if buses else next(iter(problem.matrices))
    durations = problem.matrices[profile].durations_s
    stop_sites = [problem.site_index(s.id) for s in problem.stops]
    others = [problem.site_index(d.id) for d in problem.depots] + [problem.site_index(x.id) for x in problem.labs]
    costs = np.empty(len(stop_sites))
    for k, site in enumerate(stop_sites):
        neighbours = [o for o in stop_sites + others if o != site]
        trips = durations[site, neighbours] + durations[neighbours, site] if neighbours else np.zeros(1)
        finite = trips[np.isfinite(trips)]
        costs[k] = float(finite.min()) if finite.size else 3600.0
    return costs + np.array([s.setup_s for s in problem.stops], dtype=float)


def choose_stops(problem: Problem, *, time_limit_s: float = 5.0, seed: int = 0) -> StopChoice:
    """Pick stops and assign every area to at most one of them (see the module docstring)."""
    walk = walk_matrix(problem)
    areas, stops = problem.areas, problem.stops
    capacity = [stop_capacity(problem, s) for s in stops]
    costs = _stop_costs_s(problem)
    model = cp_model.CpModel()
    use = [model.new_bool_var(f"use[{s.id}]") for s in stops]
    assign: dict[tuple[int, int], cp_model.IntVar] = {}
    for i, area in enumerate(areas):
        for reachable in np.flatnonzero(walk[i] <= area.walk_limit_m).tolist():
            if capacity[reachable] >= area.population:
                assign[i, reachable] = model.new_bool_var(f"assign[{area.id},{stops[reachable].id}]")
    for i in range(len(areas)):
        options = [v for (a, _), v in assign.items() if a == i]
        if options:
            model.add_at_most_one(options)
    for (_, j), var in assign.items():
        model.add_implication(var, use[j])
    for j, stop in enumerate(stops):
        load = [areas[i].population * var for (i, k), var in assign.items() if k == j]
        if load:
            model.add(sum(load) <= capacity[j])
        if stop.required:
            model.add(use[j] == 1)
    groups: dict[str, list[int]] = {}
    for j, stop in enumerate(stops):
        if stop.group is not None:
            groups.setdefault(stop.group, []).append(j)
    for members in groups.values():
        model.add_at_most_one(use[j] for j in members)
    # Lexicographic by weights: a person covered outweighs any stop; a stop outweighs walking.
    # Units kept coarse (100 person-metres, minutes) so the weights stay far below int64.
    walk_weight = {key: int(areas[key[0]].population * walk[key] / 100) for key in assign}
    stop_minutes = [1 + int(c / 60) for c in costs]
    stop_weight = 1 + sum(walk_weight.values())
    person_weight = 1 + stop_weight * sum(stop_minutes)
    model.maximize(
        person_weight * sum(areas[i].population * var for (i, _), var in assign.items())
        - stop_weight * sum(stop_minutes[j] * use[j] for j in range(len(stops)))
        - sum(walk_weight[key] * var for key, var in assign.items())
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit_s)
    # CP-SAT's portfolio (LP relaxations, LNS, ...) proves the district's choice optimal in 0.1 s
    # on 2 cores, where one worker ran its whole limit (6 s, out of every part's budget) with a
    # 12 % gap left. Equally good choices may then come out in either order from run to run.
    solver.parameters.num_workers = 8
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    chosen_of_area = {i: j for (i, j), var in assign.items() if found and solver.value(var)}
    people = [0] * len(stops)
    for i, j in chosen_of_area.items():
        people[j] += areas[i].population
    used = [j for j in range(len(stops)) if people[j] > 0 or stops[j].required]
    chosen = tuple(
        _staffed(stops[j], people[j] if people[j] or not stops[j].required else stops[j].people) for j in used
    )
    coverage = tuple(_coverage(problem, walk, capacity, i, chosen_of_area.get(i)) for i in range(len(areas)))
    stand_ins = _stand_ins(problem, walk, capacity, chosen_of_area, used)
    return StopChoice(
        chosen,
        coverage,
        {stops[j].id: tuple(_staffed(stops[k], people[j]) for k in others) for j, others in stand_ins.items()},
        {(areas[i].id, stops[k].id): float(walk[i, k])
         for i, j in chosen_of_area.items() for k in stand_ins.get(j, ())},
    )


def _stand_ins(
    problem: Problem, walk: NDArray[np.float64], capacity: list[int], chosen_of_area: Mapping[int, int],
    used: list[int],
) -> dict[int, list[int]]:
    """Per chosen stop (index), the unchosen candidates that could serve exactly its areas.

    Each candidate stands in for one chosen stop at most, and alternatives stay apart: a
    candidate whose group has another chosen stop, or another chosen stop's stand-in, is left out.
    """
    stops, areas = problem.stops, problem.areas
    areas_of: dict[int, list[int]] = {}
    for i, j in chosen_of_area.items():
        areas_of.setdefault(j, []).append(i)
    group_owner = {stops[j].group: j for j in used if stops[j].group is not None}
    taken = set(used)
    out: dict[int, list[int]] = {}
    for j in used:
        served = areas_of.get(j)
        if not served:
            continue
        people = sum(areas[i].population for i in served)
        limits = np.array([areas[i].walk_limit_m for i in served])
        reach = np.all(walk[served] <= limits[:, None], axis=0)
        options = []
        for k in np.flatnonzero(reach).tolist():
            group = stops[k].group
            if k in taken or stops[k].required or capacity[k] < people:
                continue
            if group is not None and group_owner.get(group, j) != j:
                continue
            options.append(k)
        options.sort(key=lambda k: float(walk[served, k].max()))  # shortest longest walk first
        picked = options[:STAND_INS]
        for k in picked:
            taken.add(k)
            if stops[k].group is not None:
                group_owner[stops[k].group] = j
        if picked:
            out[j] = picked
    return out


def _staffed(stop: BusStop, people: int) -> BusStop:
    """The stop with the people assigned to it and the tubes they fill (pooled, 10 a tube)."""
    demand = dict(stop.demand)
    demand["tubes"] = swab_tubes(people)
    return replace(stop, people=people, demand=demand)


def _coverage(problem: Problem, walk: NDArray[np.float64], capacity: list[int], i: int, j: int | None) -> AreaCoverage:
    area = problem.areas[i]
    if j is not None:
        return AreaCoverage(area.id, area.population, problem.stops[j].id, float(walk[i, j]))
    in_reach = np.flatnonzero(walk[i] <= area.walk_limit_m)
    if not any(v.serves_stops for v in problem.vehicles):
        return AreaCoverage(
            area.id, area.population, None, None, Reason.STOP_NOT_SERVED, "the fleet has no bus or van to staff stops"
        )
    if in_reach.size == 0:
        nearest = float(walk[i].min()) if walk.shape[1] else math.inf
        detail = f"nearest candidate stop is {nearest:.0f} m away on foot (limit {area.walk_limit_m:.0f} m)"
        return AreaCoverage(area.id, area.population, None, None, Reason.NO_STOP_IN_WALKING_RANGE, detail)
    room = max(capacity[int(k)] for k in in_reach)
    detail = (
        f"{area.population} people; the {in_reach.size} stop(s) within {area.walk_limit_m:.0f} m take at most "
        f"{room} people each within their allowed stay, and are full or alternatives of stops already used"
    )
    return AreaCoverage(area.id, area.population, None, None, Reason.STOPS_FULL, detail)
