"""The solvers the benchmark runs: Doorstep and three peers, each behind ``solve(instance, t, seed)``.

Every adapter returns routes as customer numbers (:data:`bench.instances.Routes`), or an empty
list when it found no solution; the benchmark checks and scores them itself. Peers run
single-threaded in this process. Their integer matrices are the instance's, scaled by
:data:`PEER_SCALE` for Solomon: distances rounded, travel *times* rounded up, so a plan a peer
thinks feasible is feasible in exact arithmetic too.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.instances import HIERARCHICAL_FIXED_COST, Instance, Routes, to_problem

PEER_SCALE = 100
"""Solomon instance units -> integer peer units (two decimals kept)."""

NEVER = np.iinfo(np.int64).max
"""PyVRP's "no time limit" (its default ``tw_late``)."""

Solver = Callable[[Instance, float, int], Routes]


def scale_of(instance: Instance) -> int:
    return PEER_SCALE if instance.hierarchical else 1


def int_distances(instance: Instance) -> NDArray[np.int64]:
    """Objective distances as integers: ``round(100 * d)`` (Solomon) or CVRPLIB's rounded ones."""
    return np.rint(scale_of(instance) * instance.distance).astype(np.int64)


def int_durations(instance: Instance) -> NDArray[np.int64]:
    """Travel times as integers, rounded *up* (a tiny slack absorbs float noise such as 5.0000001)."""
    return np.ceil(np.round(scale_of(instance) * instance.distance, 6)).astype(np.int64)


def fixed_cost(instance: Instance) -> int:
    return HIERARCHICAL_FIXED_COST if instance.hierarchical else 0


def solve_pyvrp(instance: Instance, time_limit_s: float, seed: int) -> Routes:
    """PyVRP's default iterated local search, stopped by ``MaxRuntime``."""
    from pyvrp import Model
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.stop import MaxRuntime

    scale = scale_of(instance)
    model = Model()
    locations = [model.add_location(float(x), float(y)) for x, y in instance.coords]
    opens, closes = (
        (int(instance.ready[0]) * scale, int(instance.due[0]) * scale) if instance.has_time_windows else (0, NEVER)
    )
    depot = model.add_depot(locations[0], tw_early=opens, tw_late=closes)
    for c in instance.customers:
        if instance.has_time_windows:
            model.add_client(
                locations[c],
                delivery=[int(instance.demands[c])],
                service_duration=int(instance.service[c]) * scale,
                tw_early=int(instance.ready[c]) * scale,
                tw_late=int(instance.due[c]) * scale,
                name=str(c),
            )
        else:
            model.add_client(locations[c], delivery=[int(instance.demands[c])], name=str(c))
    model.add_vehicle_type(
        num_available=instance.vehicles,
        capacity=[instance.capacity],
        start_depot=depot,
        end_depot=depot,
        fixed_cost=fixed_cost(instance),
        tw_early=opens,
        tw_late=closes,
    )
    distances, durations = int_distances(instance), int_durations(instance)
    for i, frm in enumerate(locations):
        for j, to in enumerate(locations):
            if i != j:
                model.add_edge(frm, to, distance=int(distances[i, j]), duration=int(durations[i, j]))
    with warnings.catch_warnings():
        # Raised when PyVRP struggles for feasibility; the benchmark's check reports the outcome.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = model.solve(stop=MaxRuntime(time_limit_s), seed=seed, display=False)
    # Infeasible answers are returned too: the benchmark's check reports them.
    # Client activity idx is 0-based over clients, added in customer order 1..n.
    return [[activity.idx + 1 for activity in route if activity.is_client()] for route in result.best.routes()]


def solve_vroom(instance: Instance, time_limit_s: float, seed: int) -> Routes:
    """pyvroom at exploration level 5 on one thread, ``timeout`` as its (upper-bound) budget.

    VROOM has no seed; ``seed`` is ignored.
    """
    import vroom

    del seed
    scale = scale_of(instance)
    problem = vroom.Input()
    problem.set_durations_matrix("car", int_durations(instance))
    problem.set_costs_matrix("car", int_distances(instance))
    shift = (
        vroom.TimeWindow(int(instance.ready[0]) * scale, int(instance.due[0]) * scale)
        if instance.has_time_windows
        else None
    )
    problem.add_vehicle(
        [
            vroom.Vehicle(
                id=k,
                start=0,
                end=0,
                capacity=[instance.capacity],
                time_window=shift,
                costs=vroom.VehicleCosts(fixed=fixed_cost(instance)),
            )
            for k in range(instance.vehicles)
        ]
    )
    for c in instance.customers:
        windows = (
            [vroom.TimeWindow(int(instance.ready[c]) * scale, int(instance.due[c]) * scale)]
            if instance.has_time_windows
            else []
        )
        problem.add_job(
            vroom.Job(
                id=c,
                location=c,
                default_service=int(instance.service[c]) * scale,
                delivery=[int(instance.demands[c])],
                time_windows=windows,
            )
        )
    solution = problem.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=time_limit_s)).to_dict()
    return [
        [int(step["id"]) for step in route["steps"] if step["type"] == "job"] for route in solution.get("routes", [])
    ]


def solve_ortools(instance: Instance, time_limit_s: float, seed: int) -> Routes:
    """Plain OR-Tools routing: PATH_CHEAPEST_ARC, then guided local search until the time limit.

    OR-Tools' routing search has no seed; ``seed`` is ignored.
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    del seed
    scale = scale_of(instance)
    distances, durations = int_distances(instance).tolist(), int_durations(instance).tolist()
    service = [int(s) * scale for s in instance.service]
    demands = [int(q) for q in instance.demands]
    manager = pywrapcp.RoutingIndexManager(len(instance.coords), instance.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    def distance(i: int, j: int) -> int:
        return int(distances[manager.IndexToNode(i)][manager.IndexToNode(j)])

    def travel_time(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return int(service[a] + durations[a][b])

    def demand(i: int) -> int:
        return demands[manager.IndexToNode(i)]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(distance))
    routing.SetFixedCostOfAllVehicles(fixed_cost(instance))
    routing.AddDimensionWithVehicleCapacity(
        routing.RegisterUnaryTransitCallback(demand), 0, [instance.capacity] * instance.vehicles, True, "load"
    )
    if instance.has_time_windows:
        horizon = int(instance.due[0]) * scale
        routing.AddDimension(routing.RegisterTransitCallback(travel_time), horizon, horizon, False, "time")
        times = routing.GetDimensionOrDie("time")
        for c in instance.customers:
            times.CumulVar(manager.NodeToIndex(c)).SetRange(
                int(instance.ready[c]) * scale, int(instance.due[c]) * scale
            )
        for v in range(instance.vehicles):
            for index in (routing.Start(v), routing.End(v)):
                times.CumulVar(index).SetRange(int(instance.ready[0]) * scale, horizon)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    assignment = routing.SolveWithParameters(params)
    if assignment is None:
        return []
    routes: Routes = []
    for v in range(instance.vehicles):
        index = assignment.Value(routing.NextVar(routing.Start(v)))
        route = []
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = assignment.Value(routing.NextVar(index))
        if route:
            routes.append(route)
    return routes


def _doorstep_solve() -> Callable[..., Any] | None:
    """``routing.solver.solve`` if it exists yet (it is being written alongside this benchmark)."""
    return getattr(importlib.import_module("routing.solver"), "solve", None)


def doorstep_available() -> bool:
    return _doorstep_solve() is not None


def solve_doorstep(instance: Instance, time_limit_s: float, seed: int) -> Routes:
    """Doorstep as it runs in production (its own worker processes), on :func:`to_problem`."""
    solve = _doorstep_solve()
    if solve is None:
        raise RuntimeError("routing.solver has no solve() yet")
    plan = solve(to_problem(instance), time_limit_s=time_limit_s, seed=seed)
    return [[int(visit_id) for visit_id in route.visit_ids] for route in plan.used_routes]


SOLVERS: dict[str, Solver] = {
    "doorstep": solve_doorstep,
    "pyvrp": solve_pyvrp,
    "vroom": solve_vroom,
    "ortools": solve_ortools,
}
"""Every solver the benchmark knows, in the order it runs them."""
