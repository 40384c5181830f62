"""OR-Tools engine: the one that models every rule of the problem.

Capacities per dimension, several time windows per task, service and dwell times (a bus's
dwell depends on its lanes), skills and vehicle kinds (allowed vehicles per task), priorities
and optional tasks (disjunction penalties), shifts, breaks, maximum route duration,
heterogeneous vehicles and profiles, speed factors, fixed costs, minimal disruption
(a cost on serving a visit with another vehicle than its preferred one), and lab drops:

- each lab appears as several optional copies, so a vehicle can drop samples as often as needed;
- at a lab every load dimension resets to zero (a negative transit absorbed by slack);
- the last drop is folded into the way home: arriving at the end depot (or the open end) from a
  task means going through a lab first (the one on the quickest way home from that task, or
  the nearest for an open end). Insertion heuristics add one task at a time, and a task alone
  would be infeasible if a separate lab node had to come after it;
- a sample-age dimension counts travel and service since the first task after the previous drop
  (it resets at labs and at the start), bounded by the sample-age limit less a margin for
  waiting and breaks, which it does not count (see ``_Model._age_limit_s``).

Every task is droppable with its penalty, so a first solution always exists. The first
solution comes from parallel cheapest insertion: facts.md measured PATH_CHEAPEST_ARC finding
nothing in 10 s on Solomon R101/RC101. Guided local search never stops on its own: a time limit
is always set.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.model import HORIZON_S, BusStop, Lab, Problem, TimeWindow, Vehicle, Visit
from routing.solver.engine import EngineRun, OnIncumbent, Routes
from routing.solver.scaling import (
    COST_SCALE,
    arc_costs,
    capacity_or_unlimited,
    scaled_fixed_cost,
    scaled_penalty,
    travel_times,
    used_depot_sites,
    vehicle_class,
)

FIRST_SOLUTION = routing_enums_pb2.FirstSolutionStrategy
METAHEURISTIC = routing_enums_pb2.LocalSearchMetaheuristic
RESET = 2 * HORIZON_S
"""Negative transit at a lab that lets slack bring a dimension back to zero."""
REQUIRED_STOP_FACTOR = 100


@dataclass(frozen=True, slots=True)
class OrToolsParams:
    first_solution: int = FIRST_SOLUTION.PARALLEL_CHEAPEST_INSERTION
    metaheuristic: int = METAHEURISTIC.GUIDED_LOCAL_SEARCH
    fallbacks: tuple[int, ...] = (FIRST_SOLUTION.LOCAL_CHEAPEST_INSERTION, FIRST_SOLUTION.ALL_UNPERFORMED)


@dataclass(frozen=True, slots=True)
class _Values:
    """How to read a solution's variables: from the final assignment, or, inside a solution
    callback, from the variables themselves (bound to the incumbent's values then)."""

    value: Callable[[pywrapcp.IntVar], int]
    start: Callable[[pywrapcp.IntervalVar], int]

    @staticmethod
    def of(assignment: pywrapcp.Assignment) -> _Values:
        return _Values(lambda var: int(assignment.Value(var)), lambda interval: int(assignment.StartValue(interval)))


BOUND = _Values(lambda var: int(var.Value()), lambda interval: int(interval.StartMin()))
"""The incumbent's values, in a solution callback."""


def lab_trips(problem: Problem, vehicle: Vehicle) -> int:
    """How many lab drops a vehicle may need in a day: by sample age and by rack capacity."""
    shift = vehicle.shift.end_s - vehicle.shift.start_s
    by_age = math.ceil(shift / problem.max_sample_age_s) + 1
    demand = sum(t.demand.get("tubes", 0) for t in problem.tasks)
    rack = vehicle.capacity.get("tubes")
    fleet = max(1, len(problem.vehicles))
    by_rack = math.ceil(demand / fleet / rack) + 1 if rack else 1
    return min(8, max(by_age, by_rack))


def lab_copies(problem: Problem) -> int:
    """Optional copies of each lab for drops before the last (which is folded into the way
    home): the fleet's mid-route drops, spread over the labs with half as many again in hand.
    Every copy is a node the search must consider, so no more than needed."""
    mid_route = sum(lab_trips(problem, v) - 1 for v in problem.vehicles)
    return max(2, math.ceil(1.5 * mid_route / max(1, len(problem.labs))))


class _Model:
    """The OR-Tools routing model of a problem restricted to ``task_ids``."""

    def __init__(self, problem: Problem, task_ids: Sequence[str]) -> None:
        self.problem = problem
        vehicles = problem.vehicles
        depot_sites = used_depot_sites(problem)
        self.task_ids = list(task_ids)
        self._task_set = set(self.task_ids)
        self.tasks: list[Visit | BusStop] = [problem.task(tid) for tid in self.task_ids]
        copies = lab_copies(problem) if self.tasks else 0
        self.lab_of_node: dict[int, Lab] = {}
        lab_sites: list[int] = []
        # Node order: depots used, tasks, lab copies, then one free "open end" node if needed.
        self.first_task_node = len(depot_sites)
        self.first_lab_node = self.first_task_node + len(self.tasks)
        for lab in problem.labs:
            for _ in range(copies):
                self.lab_of_node[self.first_lab_node + len(lab_sites)] = lab
                lab_sites.append(problem.site_index(lab.id))
        self.sites = depot_sites + [problem.site_index(t) for t in self.task_ids] + lab_sites
        open_end = any(v.end_depot is None for v in vehicles)
        self.open_end_node = len(self.sites) if open_end else -1
        node_count = len(self.sites) + (1 if open_end else 0)
        node_of_site = {site: node for node, site in enumerate(depot_sites)}
        starts = [node_of_site[problem.site_index(v.start_depot)] for v in vehicles]
        ends = [
            self.open_end_node if v.end_depot is None else node_of_site[problem.site_index(v.end_depot)]
            for v in vehicles
        ]
        self.manager = pywrapcp.RoutingIndexManager(node_count, len(vehicles), starts, ends)
        self.routing = pywrapcp.RoutingModel(self.manager)
        self.service = [self._service_of(v) for v in vehicles]
        self._final_labs: dict[int, list[int]] = {}
        self._travel_by_class: dict[object, np.ndarray] = {}
        self._add_costs_and_time()
        self._add_capacities()
        self._add_sample_age()
        self._add_task_rules()

    @property
    def node_count(self) -> int:
        return len(self.sites) + (1 if self.open_end_node >= 0 else 0)

    def _service_of(self, vehicle: Vehicle) -> list[int]:
        """Service time at every node for this vehicle: dwell at a stop depends on its lanes."""
        service = [0] * self.node_count
        for offset, task in enumerate(self.tasks):
            node = self.first_task_node + offset
            service[node] = task.service_s if isinstance(task, Visit) else vehicle.dwell_s(task)
        for node, lab in self.lab_of_node.items():
            service[node] = lab.handover_s
        return service

    def _time_key(self, vehicle: Vehicle) -> tuple[object, ...]:
        return (vehicle_class(vehicle), vehicle.lanes, vehicle.seconds_per_person)

    def _travel(self, vehicle: Vehicle) -> np.ndarray:
        """Whole-second travel times over ``_all_sites`` for the vehicle's class (computed once)."""
        cls = vehicle_class(vehicle)
        if cls not in self._travel_by_class:
            self._travel_by_class[cls] = travel_times(self.problem, cls, self._all_sites)
        return self._travel_by_class[cls]

    @property
    def _all_sites(self) -> list[int]:
        """The nodes' sites, then each lab once: final drops are priced from these extra rows."""
        return self.sites + [self.problem.site_index(lab.id) for lab in self.problem.labs]

    def final_labs(self, v_index: int) -> list[int]:
        """Per node, which lab (index into problem.labs) a route ending after it drops at last:
        the one on the quickest way home from that node (for an open end, the nearest)."""
        if v_index not in self._final_labs:
            vehicle = self.problem.vehicles[v_index]
            full = self._travel(vehicle)
            n = len(self.sites)
            way = full[:n, n:] + np.array([lab.handover_s for lab in self.problem.labs], dtype=np.int64)[None, :]
            if vehicle.end_depot is not None:
                home = self.sites.index(self.problem.site_index(vehicle.end_depot))
                way = way + full[n:, home][None, :]
            self._final_labs[v_index] = [int(k) for k in np.argmin(way, axis=1)]
        return self._final_labs[v_index]

    def _square(
        self, full: np.ndarray, v_index: int, per_drop: Sequence[int], *, home_leg: bool = True
    ) -> np.ndarray:
        """The node x node matrix (plus the open-end node) from a matrix over ``_all_sites``.

        The open end is reached from anywhere and never left. With labs, every arc into the
        end passes the final lab drop (``per_drop`` is what a drop adds), then, with
        ``home_leg``, goes on home; depots never drop, so an unused vehicle still costs nothing.
        """
        n = len(self.sites)
        size = n + (1 if self.open_end_node >= 0 else 0)
        out = np.zeros((size, size), dtype=np.int64)
        out[:n, :n] = full[:n, :n]
        if not (self.problem.labs and self.tasks):
            return out
        vehicle = self.problem.vehicles[v_index]
        final = self.final_labs(v_index)
        rows = np.arange(self.first_task_node, n)
        lab_rows = np.array([n + final[r] for r in rows], dtype=np.intp)
        via = full[rows, lab_rows] + np.array([per_drop[final[r]] for r in rows], dtype=np.int64)
        if vehicle.end_depot is None:
            out[rows, self.open_end_node] = via
        else:
            home = self.sites.index(self.problem.site_index(vehicle.end_depot))
            out[rows, home] = via + (full[lab_rows, home] if home_leg else 0)
        return out

    def _times(self, v_index: int, *, lab_reset: bool = False) -> list[list[int]]:
        """Transit from a node = service there + travel: the time cumul is each service start.

        ``lab_reset``: the sample age's transits, which reset at labs and at the end count only
        up to the arrival at the final lab (the samples' age on delivery).
        """
        vehicle = self.problem.vehicles[v_index]
        full = self._travel(vehicle)
        labs = self.problem.labs
        if lab_reset:
            times = self._square(full, v_index, [0] * len(labs), home_leg=False)
        else:
            times = self._square(full, v_index, [lab.handover_s for lab in labs])
        times += np.asarray(self.service[v_index], dtype=np.int64)[:, None]
        if lab_reset and self.lab_of_node:
            times[list(self.lab_of_node)] -= RESET
        return times.tolist()

    def _costs(self, v_index: int, preferred: bool) -> list[list[int]]:
        problem, vehicle = self.problem, self.problem.vehicles[v_index]
        per_second = COST_SCALE * problem.objective.duration_cost_per_s
        # A drop costs its handover time (and never nothing), so no needless extra drops.
        per_drop = [1 + round(per_second * lab.handover_s) for lab in problem.labs]
        costs = self._square(arc_costs(problem, vehicle_class(vehicle), self._all_sites), v_index, per_drop)
        for node, lab in self.lab_of_node.items():
            costs[:, node] += per_drop[problem.labs.index(lab)]
        if preferred:
            costs[:, : len(self.sites)] += self._reassignment_costs(vehicle)[None, :]
        return costs.tolist()

    def _add_costs_and_time(self) -> None:
        problem, routing = self.problem, self.routing
        preferred = problem.objective.reassignment_cost > 0 and any(
            isinstance(t, Visit) and t.preferred_vehicle for t in self.tasks
        )
        time_callbacks: dict[object, int] = {}
        cost_callbacks: dict[object, int] = {}
        per_vehicle_time = []
        for v_index, vehicle in enumerate(problem.vehicles):
            # With labs the way home depends on the end depot (or the open end): per vehicle then.
            home = (vehicle.end_depot, vehicle.id if vehicle.end_depot is None else None) if problem.labs else None
            key = (self._time_key(vehicle), home)
            if key not in time_callbacks:
                time_callbacks[key] = routing.RegisterTransitMatrix(self._times(v_index))
            cost_key = (vehicle_class(vehicle), home, vehicle.id if preferred else None)
            if cost_key not in cost_callbacks:
                cost_callbacks[cost_key] = routing.RegisterTransitMatrix(self._costs(v_index, preferred))
            routing.SetArcCostEvaluatorOfVehicle(cost_callbacks[cost_key], v_index)
            routing.SetFixedCostOfVehicle(scaled_fixed_cost(vehicle), v_index)
            per_vehicle_time.append(time_callbacks[key])
        routing.AddDimensionWithVehicleTransits(per_vehicle_time, HORIZON_S, HORIZON_S, False, "time")
        self.time = routing.GetDimensionOrDie("time")
        if problem.objective.makespan_cost_per_s > 0:
            # The global span is the latest end less the earliest start: the day's makespan.
            self.time.SetGlobalSpanCostCoefficient(round(COST_SCALE * problem.objective.makespan_cost_per_s))
        solver = routing.solver()
        self.break_intervals: dict[int, list[pywrapcp.IntervalVar]] = {}
        for v_index, vehicle in enumerate(problem.vehicles):
            start, end = routing.Start(v_index), routing.End(v_index)
            self.time.CumulVar(start).SetRange(vehicle.shift.start_s, vehicle.shift.end_s)
            self.time.CumulVar(end).SetRange(vehicle.shift.start_s, vehicle.shift.end_s)
            if vehicle.max_duration_s is not None:
                self.time.SetSpanUpperBoundForVehicle(vehicle.max_duration_s, v_index)
            # Leave as late and finish as early as possible: no pointless waiting.
            routing.AddVariableMaximizedByFinalizer(self.time.CumulVar(start))
            routing.AddVariableMinimizedByFinalizer(self.time.CumulVar(end))
            if vehicle.breaks:
                intervals = [
                    solver.FixedDurationIntervalVar(
                        b.window.start_s, b.window.end_s, b.duration_s, False, f"{vehicle.id}:{b.id}"
                    )
                    for b in vehicle.breaks
                ]
                # Indexed by routing index (OR-Tools' vrp_breaks sample): a break never overlaps a service.
                service = self.service[v_index]
                visit_transits = [service[self.manager.IndexToNode(i)] for i in range(routing.Size())]
                self.time.SetBreakIntervalsOfVehicle(intervals, v_index, visit_transits)
                self.break_intervals[v_index] = intervals

    def _reassignment_costs(self, vehicle: Vehicle) -> np.ndarray:
        """Scaled cost of arriving at each node: a visit someone else had before costs extra."""
        extra = np.zeros(len(self.sites), dtype=np.int64)
        cost = round(self.problem.objective.reassignment_cost * COST_SCALE)
        for offset, task in enumerate(self.tasks):
            if isinstance(task, Visit) and task.preferred_vehicle not in (None, vehicle.id):
                extra[self.first_task_node + offset] = cost
        return extra

    def _add_capacities(self) -> None:
        problem, routing = self.problem, self.routing
        for dimension in problem.dimensions:
            demand = [0] * self.node_count
            for offset, task in enumerate(self.tasks):
                demand[self.first_task_node + offset] = task.demand.get(dimension, 0)
            total = sum(demand)
            for node in self.lab_of_node:
                demand[node] = -total  # unload everything; slack keeps the cumul at >= 0
            capacities = [capacity_or_unlimited(v, dimension, total) for v in problem.vehicles]
            callback = routing.RegisterUnaryTransitVector(demand)
            slack = total if self.lab_of_node else 0
            routing.AddDimensionWithVehicleCapacity(callback, slack, capacities, True, f"load:{dimension}")

    def _add_sample_age(self) -> None:
        if not self.lab_of_node:
            return
        routing, problem = self.routing, self.problem
        callbacks: dict[object, int] = {}
        per_vehicle = []
        for v_index, vehicle in enumerate(problem.vehicles):
            key = (self._time_key(vehicle), vehicle.end_depot, vehicle.id if vehicle.end_depot is None else None)
            if key not in callbacks:
                callbacks[key] = routing.RegisterTransitMatrix(self._times(v_index, lab_reset=True))
            per_vehicle.append(callbacks[key])
        routing.AddDimensionWithVehicleTransits(per_vehicle, RESET, HORIZON_S, True, "sample_age")
        age = routing.GetDimensionOrDie("sample_age")
        for v_index in range(len(problem.vehicles)):
            # At the end the age is that of the samples on reaching the final lab (see _times).
            age.CumulVar(routing.End(v_index)).SetMax(self._age_limit_s(v_index))
        limit = max(self._age_limit_s(v) for v in range(len(problem.vehicles)))
        for offset in range(len(self.tasks)):
            index = self.manager.NodeToIndex(self.first_task_node + offset)
            # After a task the age grows by travel and service only: no slack (see _age_limit_s).
            age.SlackVar(index).SetMax(0)
            age.CumulVar(index).SetMax(limit)
        for node in self.lab_of_node:
            age.CumulVar(self.manager.NodeToIndex(node)).SetMax(limit)

    def _age_limit_s(self, v_index: int) -> int:
        """The engine's bound on sample age: the real limit less a margin for waiting and breaks.

        Tying the age's slack to the time's (waiting counted exactly) made every insertion
        heuristic find nothing in 20 s on a 300-visit district (each insertion then needs full
        propagation of the tie constraints); without the tie they answer in 0.5-8 s. The age
        here leaves out waiting and breaks, so the engine keeps this margin, and the evaluator
        (exact) has the last word: a plan it finds late is repaired before it is returned.
        """
        vehicle = self.problem.vehicles[v_index]
        limit = self.problem.max_sample_age_s
        breaks = sum(b.duration_s for b in vehicle.breaks)
        return max(limit // 2, int(limit * 0.9) - breaks)

    def _add_task_rules(self) -> None:
        problem, routing, manager = self.problem, self.routing, self.manager
        groups: dict[str, list[tuple[int, int]]] = {}
        for offset, task in enumerate(self.tasks):
            index = manager.NodeToIndex(self.first_task_node + offset)
            self._within(index, task.windows)
            allowed = [i for i, v in enumerate(problem.vehicles) if v.may_serve(task)]
            if len(allowed) < len(problem.vehicles):
                routing.VehicleVar(index).SetValues([-1, *allowed])
            penalty = scaled_penalty(problem, task)
            if isinstance(task, BusStop) and task.required:
                penalty *= REQUIRED_STOP_FACTOR
            if isinstance(task, BusStop) and task.group is not None:
                groups.setdefault(task.group, []).append((index, penalty))
            else:
                routing.AddDisjunction([index], penalty)
        # Alternatives: at most one stop of a group, the penalty paid once when none is served.
        for members in groups.values():
            routing.AddDisjunction([index for index, _ in members], max(p for _, p in members), 1)
        for node, lab in self.lab_of_node.items():
            index = manager.NodeToIndex(node)
            self._within(index, lab.windows)
            routing.AddDisjunction([index], 0)

    def _within(self, index: int, windows: tuple[TimeWindow, ...]) -> None:
        """Service at ``index`` starts inside one of ``windows`` (the gaps between them removed)."""
        cumul = self.time.CumulVar(index)
        cumul.SetRange(windows[0].start_s, windows[-1].end_s)
        for before, after in itertools.pairwise(windows):
            cumul.RemoveInterval(before.end_s + 1, after.start_s - 1)

    def step_id(self, node: int) -> str | None:
        if self.first_task_node <= node < self.first_lab_node:
            return self.task_ids[node - self.first_task_node]
        lab = self.lab_of_node.get(node)
        return None if lab is None else lab.id

    def routes_of(self, solution: _Values) -> Routes:
        """Task, lab and break ids in order per vehicle, as a solution (or incumbent) has them."""
        routes: Routes = {}
        for v_index, vehicle in enumerate(self.problem.vehicles):
            steps = self._route_steps(solution, v_index)
            indices, order = [i for i, _ in steps], [step for _, step in steps]
            if not any(s in self._task_set for s in order):
                continue
            if self.break_intervals.get(v_index):
                order = self._with_breaks(solution, v_index, indices, order)
            if self.problem.labs:
                last = self.manager.IndexToNode(indices[-1])
                order.append(self.problem.labs[self.final_labs(v_index)[last]].id)  # the last drop
            routes[vehicle.id] = order
        return routes

    def _with_breaks(self, solution: _Values, v_index: int, indices: list[int], order: list[str]) -> list[str]:
        """The route's steps with each break that falls inside the route at its place by time."""
        vehicle = self.problem.vehicles[v_index]
        route_start = solution.value(self.time.CumulVar(self.routing.Start(v_index)))
        route_end = solution.value(self.time.CumulVar(self.routing.End(v_index)))
        service_starts = [solution.value(self.time.CumulVar(i)) for i in indices]
        placed: list[tuple[int, int, str]] = []
        for brk, interval in zip(vehicle.breaks, self.break_intervals[v_index], strict=True):
            t = solution.start(interval)
            if t + brk.duration_s <= route_start or t >= route_end:
                continue  # taken before the day starts or after it ends
            placed.append((sum(1 for s in service_starts if s < t), t, brk.id))
        merged: list[str] = []
        for position, step in enumerate([*order, None]):
            merged.extend(b for p, _, b in sorted(placed) if p == position)
            if step is not None:
                merged.append(step)
        return merged

    def _route_steps(self, solution: _Values, v_index: int) -> list[tuple[int, str]]:
        """The route's tasks and lab drops in order: (routing index, id)."""
        steps = []
        index = solution.value(self.routing.NextVar(self.routing.Start(v_index)))
        while not self.routing.IsEnd(index):
            step = self.step_id(self.manager.IndexToNode(index))
            if step is not None:
                steps.append((index, step))
            index = solution.value(self.routing.NextVar(index))
        return steps

    def initial_indices(self, initial: Mapping[str, Sequence[str]]) -> list[list[int]]:
        """Routing indices for given routes (tasks by id; each lab drop takes the next free copy)."""
        position = {tid: self.first_task_node + i for i, tid in enumerate(self.task_ids)}
        free_copies: dict[str, list[int]] = {}
        for node, lab in sorted(self.lab_of_node.items()):
            free_copies.setdefault(lab.id, []).append(node)
        routes = []
        for vehicle in self.problem.vehicles:
            nodes = []
            steps = list(initial.get(vehicle.id, ()))
            while steps and steps[-1] in free_copies:
                steps.pop()  # the last drop: folded into the way home here (see _square)
            for step in steps:
                if step in position:
                    nodes.append(position[step])
                elif free_copies.get(step):
                    nodes.append(free_copies[step].pop(0))
            routes.append([self.manager.NodeToIndex(n) for n in nodes])
        return routes


FLEET_STAGE = 0.2
"""Share of the budget each smaller-fleet stage gets (see :func:`solve_ortools`)."""


def solve_ortools(
    problem: Problem,
    task_ids: Sequence[str],
    *,
    deadline: float,
    seed: int = 0,
    params: OrToolsParams | None = None,
    initial: Mapping[str, Sequence[str]] | None = None,
    on_incumbent: OnIncumbent | None = None,
    fleet_descent: bool = False,
) -> Routes:
    """Best routes found by ``deadline`` (a ``time.time()`` value). Tasks may be left out.

    With ``fleet_descent``, the first search gets part of the budget; then, as long as the best
    routes serve every task, each stage searches again with the vehicles they use less the one
    doing least. Guided local search seldom empties a route by itself, and each vehicle on the
    road drives out and home (and, a bus, to a lab). The cheapest answer wins.

    OR-Tools' routing search is deterministic for a given model and parameters; ``seed`` is
    accepted for a uniform engine signature.
    """
    if not fleet_descent:
        return _search(problem, task_ids, deadline, params, initial, on_incumbent)[0]
    budget = deadline - time.time()
    stage_s = FLEET_STAGE * budget
    best, best_cost = _search(problem, task_ids, deadline - 3 * stage_s, params, initial, on_incumbent)
    best_fleet, current, tasks = problem.vehicles, best, set(task_ids)
    while current and time.time() < deadline - 1.0:
        used = [v for v in problem.vehicles if current.get(v.id)]
        if _left_out(problem, tasks, current) or len(used) < 2:
            break
        idlest = min(used, key=lambda v: (sum(1 for s in current[v.id] if s in tasks), v.id))
        fleet = tuple(v for v in used if v.id != idlest.id)
        # A fresh search: started from the best routes less one, it stayed in their basin (measured).
        routes, cost = _search(problem.replace(vehicles=fleet), task_ids, min(deadline, time.time() + stage_s),
                               params, None, on_incumbent)
        if cost is None:
            break
        if best_cost is None or cost < best_cost:
            best, best_cost, best_fleet = routes, cost, fleet
        current = routes
    if time.time() < deadline - 1.0:  # time left: go on from the best
        routes, cost = _search(problem.replace(vehicles=best_fleet), task_ids, deadline, params, best, on_incumbent)
        if cost is not None and (best_cost is None or cost < best_cost):
            best = routes
    return best


def _left_out(problem: Problem, tasks: set[str], routes: Routes) -> set[str]:
    """Tasks the routes do not serve, but for stops whose alternative (a stop of their group) they do."""
    served = {step for steps in routes.values() for step in steps}
    groups = problem.alternatives_used({t.id for t in problem.tasks} - served)
    return {t for t in tasks - served if not (isinstance(task := problem.task(t), BusStop) and task.group in groups)}


def _search(
    problem: Problem,
    task_ids: Sequence[str],
    deadline: float,
    params: OrToolsParams | None,
    initial: Mapping[str, Sequence[str]] | None,
    on_incumbent: OnIncumbent | None,
) -> tuple[Routes, int | None]:
    """One search to ``deadline``: the routes and their cost in the engine's objective."""
    params = params or OrToolsParams()
    model = _Model(problem, task_ids)
    routing = model.routing
    best: list[int | None] = [None]

    def report() -> None:
        cost = routing.CostVar().Value()
        if best[0] is not None and cost >= best[0]:
            return
        best[0] = cost
        if on_incumbent is not None:
            on_incumbent(cost, model.routes_of(BOUND))

    routing.AddAtSolutionCallback(report)
    strategies = (params.first_solution, *params.fallbacks)
    for attempt, strategy in enumerate(strategies):
        remaining = deadline - time.time()
        search = pywrapcp.DefaultRoutingSearchParameters()
        search.first_solution_strategy = strategy
        search.local_search_metaheuristic = params.metaheuristic
        search.time_limit.FromMilliseconds(max(100, int(remaining * 1000)))
        assignment = None
        if initial and attempt == 0:
            routing.CloseModelWithParameters(search)
            start = routing.ReadAssignmentFromRoutes(model.initial_indices(initial), True)
            if start is not None:
                assignment = routing.SolveFromAssignmentWithParameters(start, search)
        if assignment is None:
            assignment = routing.SolveWithParameters(search)
        if assignment is not None:
            routes = model.routes_of(_Values.of(assignment))
            return routes, int(assignment.ObjectiveValue())
        if time.time() >= deadline:
            break
    return {}, None


class OrTools:
    """The engine object (:class:`routing.solver.engine.Engine`): models everything."""

    name = "ortools"
    metaheuristics: ClassVar[Mapping[str, int]] = {
        "tabu": METAHEURISTIC.GENERIC_TABU_SEARCH,
        "annealing": METAHEURISTIC.SIMULATED_ANNEALING,
    }
    """Variants by the metaheuristic that guides them (default: guided local search)."""

    def unsupported(self, problem: Problem, task_ids: Sequence[str]) -> str | None:
        return None

    def alone(self, problem: Problem, seed: int, cores: int) -> EngineRun:
        # Buses: fewer of them on the road drive less (out, home and to the labs): the search then
        # also tries smaller fleets (solve_ortools).
        return EngineRun(self, seed, variant="fleet" if problem.stops else None)

    def portfolio(self, problem: Problem, seed: int, cores: int) -> list[EngineRun]:
        # A second core runs a differently guided search.
        first = self.alone(problem, seed, cores)
        return [first, EngineRun(self, seed, variant="tabu")] if cores >= 2 else [first]

    def run(
        self,
        problem: Problem,
        task_ids: Sequence[str],
        settings: EngineRun,
        *,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: OnIncumbent | None,
    ) -> Routes:
        metaheuristic = self.metaheuristics.get(settings.variant or "")
        return solve_ortools(
            problem,
            task_ids,
            deadline=deadline,
            seed=settings.seed,
            params=OrToolsParams() if metaheuristic is None else OrToolsParams(metaheuristic=metaheuristic),
            initial=initial,
            on_incumbent=on_incumbent,
            fleet_descent=settings.variant == "fleet",
        )


ORTOOLS = OrTools()
