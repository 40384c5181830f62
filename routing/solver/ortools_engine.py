"""OR-Tools engine: the one that models every rule of the problem.

Capacities per dimension, several time windows per visit, service times, skills (allowed
vehicles per visit), priorities and optional visits (disjunction penalties), shifts, breaks,
maximum route duration, heterogeneous vehicles and profiles, speed factors and fixed costs.

Every visit is droppable with its penalty, so a first solution always exists. The first
solution comes from parallel cheapest insertion: facts.md measured PATH_CHEAPEST_ARC finding
nothing in 10 s on Solomon R101/RC101. Guided local search never stops on its own: a time limit
is always set.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.model import HORIZON_S, Problem
from routing.solver.scaling import (
    arc_costs,
    capacity_or_unlimited,
    scaled_fixed_cost,
    scaled_penalty,
    travel_times,
    vehicle_class,
)

Routes = dict[str, list[str]]
OnIncumbent = Callable[[int, Routes], None]

FIRST_SOLUTION = routing_enums_pb2.FirstSolutionStrategy
METAHEURISTIC = routing_enums_pb2.LocalSearchMetaheuristic


@dataclass(frozen=True, slots=True)
class OrToolsParams:
    first_solution: int = FIRST_SOLUTION.PARALLEL_CHEAPEST_INSERTION
    metaheuristic: int = METAHEURISTIC.GUIDED_LOCAL_SEARCH
    fallbacks: tuple[int, ...] = (FIRST_SOLUTION.LOCAL_CHEAPEST_INSERTION, FIRST_SOLUTION.ALL_UNPERFORMED)


class _Model:
    """The OR-Tools routing model of a problem restricted to ``visit_ids``."""

    def __init__(self, problem: Problem, visit_ids: Sequence[str]) -> None:
        self.problem = problem
        vehicles = problem.vehicles
        depot_sites = sorted(
            {problem.site_index(v.start_depot) for v in vehicles}
            | {problem.site_index(v.end_depot) for v in vehicles if v.end_depot is not None}
        )
        self.visit_ids = list(visit_ids)
        visit_sites = [problem.site_index(vid) for vid in self.visit_ids]
        # Node order: depots used, then the visits, then one free "open end" node if needed.
        self.sites = depot_sites + visit_sites
        self.first_visit_node = len(depot_sites)
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
        self.visits = [problem.visit(vid) for vid in self.visit_ids]
        self._add_costs_and_time()
        self._add_capacities()
        self._add_visit_rules()

    def _pad(self, matrix: list[list[int]]) -> list[list[int]]:
        """Add the open-end node: free to reach from anywhere, never left."""
        if self.open_end_node < 0:
            return matrix
        return [[*row, 0] for row in matrix] + [[0] * (len(matrix) + 1)]

    def _add_costs_and_time(self) -> None:
        problem, routing = self.problem, self.routing
        service = [0] * self.first_visit_node + [v.service_s for v in self.visits]
        if self.open_end_node >= 0:
            service.append(0)
        self.service = service
        time_callbacks: dict[object, int] = {}
        cost_callbacks: dict[object, int] = {}
        per_vehicle_time = []
        for v_index, vehicle in enumerate(problem.vehicles):
            cls = vehicle_class(vehicle)
            if cls not in time_callbacks:
                times = travel_times(problem, cls, self.sites)
                # Transit from a node includes the service there: the time dimension's cumul is
                # then the service start at every node.
                times += [[s] for s in service[: len(self.sites)]]
                time_callbacks[cls] = routing.RegisterTransitMatrix(self._pad(times.tolist()))
                costs = arc_costs(problem, cls, self.sites)
                cost_callbacks[cls] = routing.RegisterTransitMatrix(self._pad(costs.tolist()))
            routing.SetArcCostEvaluatorOfVehicle(cost_callbacks[cls], v_index)
            routing.SetFixedCostOfVehicle(scaled_fixed_cost(vehicle), v_index)
            per_vehicle_time.append(time_callbacks[cls])
        routing.AddDimensionWithVehicleTransits(per_vehicle_time, HORIZON_S, HORIZON_S, False, "time")
        self.time = routing.GetDimensionOrDie("time")
        solver = routing.solver()
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
                visit_transits = [service[self.manager.IndexToNode(i)] for i in range(routing.Size())]
                self.time.SetBreakIntervalsOfVehicle(intervals, v_index, visit_transits)
        self.break_vars = {
            v_index: list(vehicle.breaks) for v_index, vehicle in enumerate(problem.vehicles) if vehicle.breaks
        }

    def _add_capacities(self) -> None:
        problem, routing = self.problem, self.routing
        for dimension in problem.dimensions:
            demand = [0] * self.first_visit_node + [v.demand.get(dimension, 0) for v in self.visits]
            if self.open_end_node >= 0:
                demand.append(0)
            total = sum(demand)
            capacities = [capacity_or_unlimited(v, dimension, total) for v in problem.vehicles]
            callback = routing.RegisterUnaryTransitVector(demand)
            routing.AddDimensionWithVehicleCapacity(callback, 0, capacities, True, f"load:{dimension}")

    def _add_visit_rules(self) -> None:
        problem, routing, manager = self.problem, self.routing, self.manager
        for offset, visit in enumerate(self.visits):
            index = manager.NodeToIndex(self.first_visit_node + offset)
            windows = visit.windows
            cumul = self.time.CumulVar(index)
            cumul.SetRange(windows[0].start_s, windows[-1].end_s)
            for before, after in itertools.pairwise(windows):
                cumul.RemoveInterval(before.end_s + 1, after.start_s - 1)
            if visit.skills:
                allowed = [i for i, v in enumerate(problem.vehicles) if visit.skills <= v.skills]
                routing.VehicleVar(index).SetValues([-1, *allowed])
            routing.AddDisjunction([index], scaled_penalty(problem, visit))

    def routes_of(self, assignment_value: Callable[[int], int]) -> Routes:
        """Visit ids in order per vehicle, from a function giving each index's next index."""
        routes: Routes = {}
        for v_index, vehicle in enumerate(self.problem.vehicles):
            index = self.routing.Start(v_index)
            order = []
            while not self.routing.IsEnd(index):
                index = assignment_value(index)
                node = self.manager.IndexToNode(index)
                if self.first_visit_node <= node < len(self.sites):
                    order.append(self.visit_ids[node - self.first_visit_node])
            if order:
                routes[vehicle.id] = order
        return routes

    def with_breaks(self, assignment: pywrapcp.Assignment, routes: Routes) -> Routes:
        """Insert each break that falls inside its route at its position by time."""
        if not self.break_vars:
            return routes
        intervals = assignment.IntervalVarContainer()
        starts = {intervals.Element(i).Var().Name(): intervals.Element(i).StartValue() for i in range(intervals.Size())}
        out = dict(routes)
        for v_index, breaks in self.break_vars.items():
            vehicle = self.problem.vehicles[v_index]
            order = routes.get(vehicle.id)
            if not order:
                continue
            route_start = assignment.Value(self.time.CumulVar(self.routing.Start(v_index)))
            route_end = assignment.Value(self.time.CumulVar(self.routing.End(v_index)))
            service_starts = [self._service_start(assignment, vid) for vid in order]
            placed: list[tuple[int, int, str]] = []
            for brk in breaks:
                t = starts.get(f"{vehicle.id}:{brk.id}")
                if t is None or t + brk.duration_s <= route_start or t >= route_end:
                    continue  # taken before the day starts or after it ends
                position = sum(1 for s in service_starts if s < t)
                placed.append((position, t, brk.id))
            merged: list[str] = []
            for position, visit_id in enumerate([*order, None]):
                merged.extend(b for p, _, b in sorted(placed) if p == position)
                if visit_id is not None:
                    merged.append(visit_id)
            out[vehicle.id] = merged
        return out

    def _service_start(self, assignment: pywrapcp.Assignment, visit_id: str) -> int:
        node = self.first_visit_node + self.visit_ids.index(visit_id)
        return int(assignment.Value(self.time.CumulVar(self.manager.NodeToIndex(node))))


def solve_ortools(
    problem: Problem,
    visit_ids: Sequence[str],
    *,
    deadline: float,
    seed: int = 0,
    params: OrToolsParams | None = None,
    initial: Mapping[str, Sequence[str]] | None = None,
    on_incumbent: OnIncumbent | None = None,
) -> Routes:
    """Best routes found by ``deadline`` (a ``time.time()`` value). Visits may be left out.

    OR-Tools' routing search is deterministic for a given model and parameters; ``seed`` is
    accepted for a uniform engine signature.
    """
    params = params or OrToolsParams()
    model = _Model(problem, visit_ids)
    routing = model.routing
    best = [None]

    def report() -> None:
        cost = routing.CostVar().Value()
        if best[0] is not None and cost >= best[0]:
            return
        best[0] = cost
        if on_incumbent is not None:
            on_incumbent(cost, model.routes_of(lambda i: routing.NextVar(i).Value()))

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
            start = routing.ReadAssignmentFromRoutes(_initial_nodes(model, initial), True)
            if start is not None:
                assignment = routing.SolveFromAssignmentWithParameters(start, search)
        if assignment is None:
            assignment = routing.SolveWithParameters(search)
        if assignment is not None:
            return model.with_breaks(assignment, model.routes_of(partial(_next, assignment, routing)))
        if time.time() >= deadline:
            break
    return {}


def _next(assignment: pywrapcp.Assignment, routing: pywrapcp.RoutingModel, index: int) -> int:
    return int(assignment.Value(routing.NextVar(index)))


def _initial_nodes(model: _Model, initial: Mapping[str, Sequence[str]]) -> list[list[int]]:
    position = {vid: model.first_visit_node + i for i, vid in enumerate(model.visit_ids)}
    return [
        [model.manager.NodeToIndex(position[vid]) for vid in initial.get(vehicle.id, ()) if vid in position]
        for vehicle in model.problem.vehicles
    ]
