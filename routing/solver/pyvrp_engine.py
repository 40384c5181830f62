"""PyVRP engine (iterated local search): the strongest search, for problems it can express.

It covers capacities, time windows (several per visit through a mutually exclusive group of
copies), service times, optional visits with prizes, several depots, open ends, vehicle
profiles and speeds, shifts, maximum duration and fixed costs. It cannot express skills that
exclude vehicles, or crew breaks: :func:`pyvrp_unsupported` says why such a problem goes to
OR-Tools alone.

Arc costs are handed over as PyVRP's "distance" (unit distance cost 1), so both engines optimise
exactly the same objective.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import MaxRuntime

from routing.model import Problem
from routing.solver.engine import EngineRun, OnIncumbent, Routes
from routing.solver.scaling import (
    NO_PATH_S,
    arc_costs,
    capacity_or_unlimited,
    scaled_fixed_cost,
    scaled_penalty,
    travel_times,
    used_depot_sites,
    vehicle_class,
)

UNLIMITED = 2**62
COST_SCALE = 1
"""Cost units per objective unit handed to PyVRP (see :func:`_max_penalty`): whole seconds."""
DEFAULT_MAX_PENALTY = 100_000.0
"""PyVRP's own default cap on a penalty per unit of violation."""


def pyvrp_unsupported(problem: Problem, visit_ids: Sequence[str]) -> str | None:
    """Why PyVRP cannot solve this problem exactly, or None when it can."""
    if any(v.breaks for v in problem.vehicles):
        return "crew breaks"
    if problem.stops or problem.labs:
        return "bus stops and lab drops with sample age"
    if not all(v.serves_visits for v in problem.vehicles):
        return "buses in a fleet with home visits"
    if problem.objective.reassignment_cost > 0 and any(v.preferred_vehicle for v in problem.visits):
        return "preferred vehicles (minimal disruption)"
    if problem.objective.makespan_cost_per_s > 0:
        return "a makespan cost"
    skill_sets = {v.skills for v in problem.vehicles}
    for vid in visit_ids:
        skills = problem.visit(vid).skills
        if skills and not all(skills <= have for have in skill_sets):
            return "skills that only some vehicles have"
    return None


class _Data:
    """PyVRP ProblemData for ``problem`` restricted to ``visit_ids``, and the way back."""

    def __init__(self, problem: Problem, visit_ids: Sequence[str], *, prizes_only: bool = False) -> None:
        self.problem = problem
        vehicles = problem.vehicles
        depot_sites = used_depot_sites(problem)
        visits = [problem.visit(vid) for vid in visit_ids]
        # Locations: depots, then one per visit, then a free "open end" depot if needed.
        sites = depot_sites + [problem.site_index(vid) for vid in visit_ids]
        open_end = any(v.end_depot is None for v in vehicles)
        depot_of_site = {site: i for i, site in enumerate(depot_sites)}
        open_end_depot = len(depot_sites)
        locations = [pyvrp.Location(x=loc[0], y=loc[1]) for loc in (problem.sites[s].location for s in sites)]
        depots = [pyvrp.Depot(location=i) for i in range(len(depot_sites))]
        if open_end:
            locations.append(pyvrp.Location(x=0.0, y=0.0))
            depots.append(pyvrp.Depot(location=len(sites)))
        dimensions = problem.dimensions
        clients: list[pyvrp.Client] = []
        groups: list[pyvrp.ClientGroup] = []
        self.visit_of_client: list[str] = []
        for offset, visit in enumerate(visits):
            location = len(depot_sites) + offset
            delivery = [visit.demand.get(dim, 0) for dim in dimensions]
            # prizes_only: required visits become prizes worth their penalty, so PyVRP can
            # leave the least urgent out when the fleet is too small for everyone.
            required = visit.required and not prizes_only
            prize = 0 if required else scaled_penalty(problem, visit, scale=COST_SCALE)
            windows = visit.windows
            if len(windows) > 1:
                group = len(groups)
                members = list(range(len(clients), len(clients) + len(windows)))
                groups.append(pyvrp.ClientGroup(members, required=required))
            for window in windows:
                clients.append(
                    pyvrp.Client(
                        location=location,
                        delivery=delivery,
                        service_duration=visit.service_s,
                        tw_early=window.start_s,
                        tw_late=window.end_s,
                        prize=prize,
                        required=required and len(windows) == 1,
                        group=group if len(windows) > 1 else None,
                    )
                )
                self.visit_of_client.append(visit.id)
        totals = {dim: sum(v.demand.get(dim, 0) for v in visits) for dim in dimensions}
        classes: list[tuple[str, float]] = []
        distance_matrices: list[np.ndarray] = []
        duration_matrices: list[np.ndarray] = []
        types: list[pyvrp.VehicleType] = []
        self.vehicles_of_type: list[list[str]] = []
        type_of_key: dict[tuple[object, ...], int] = {}
        for vehicle in vehicles:
            cls = vehicle_class(vehicle)
            if (cls.profile, cls.speed_factor) not in classes:
                classes.append((cls.profile, cls.speed_factor))
                duration_matrices.append(self._pad(travel_times(problem, cls, sites), open_end))
                distance_matrices.append(self._pad(arc_costs(problem, cls, sites, scale=COST_SCALE), open_end))
            start = depot_of_site[problem.site_index(vehicle.start_depot)]
            end = open_end_depot if vehicle.end_depot is None else depot_of_site[problem.site_index(vehicle.end_depot)]
            vehicle_type = dict(
                capacity=[capacity_or_unlimited(vehicle, dim, totals[dim]) for dim in dimensions],
                start_depot=start,
                end_depot=end,
                fixed_cost=scaled_fixed_cost(vehicle, scale=COST_SCALE),
                tw_early=vehicle.shift.start_s,
                tw_late=vehicle.shift.end_s,
                shift_duration=vehicle.max_duration_s if vehicle.max_duration_s is not None else UNLIMITED,
                profile=classes.index((cls.profile, cls.speed_factor)),
            )
            # Identical vehicles form one PyVRP vehicle type with several available.
            key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in vehicle_type.items())
            if key not in type_of_key:
                type_of_key[key] = len(types)
                types.append(vehicle_type)  # type: ignore[arg-type]
                self.vehicles_of_type.append([])
            self.vehicles_of_type[type_of_key[key]].append(vehicle.id)
        types = [
            pyvrp.VehicleType(num_available=len(ids), **kwargs)  # type: ignore[arg-type]
            for ids, kwargs in zip(self.vehicles_of_type, types, strict=True)
        ]
        self.data = pyvrp.ProblemData(
            locations,
            clients,
            depots,
            types,
            distance_matrices,  # type: ignore[arg-type]
            duration_matrices,  # type: ignore[arg-type]
            groups=groups,
        )

    @staticmethod
    def _pad(matrix: np.ndarray, open_end: bool) -> np.ndarray:
        """Add the open-end depot: free to reach from anywhere, never a way to anywhere."""
        if not open_end:
            return matrix
        n = matrix.shape[0]
        out = np.full((n + 1, n + 1), NO_PATH_S, dtype=np.int64)
        out[:n, :n] = matrix
        out[:, n] = 0
        out[n, n] = 0
        return out

    def routes_of(self, solution: pyvrp.Solution) -> Routes:
        free = {t: list(ids) for t, ids in enumerate(self.vehicles_of_type)}
        routes: Routes = {}
        for route in solution.routes():
            order = [self.visit_of_client[a.idx] for a in route if a.is_client()]
            if order:
                routes[free[route.vehicle_type()].pop(0)] = order
        return routes

    def solution_from(self, routes: Mapping[str, Sequence[str]]) -> pyvrp.Solution | None:
        """A PyVRP solution for given routes (a warm start); None if it cannot be mapped."""
        clients_of: dict[str, int] = {}
        for c, vid in enumerate(self.visit_of_client):
            clients_of.setdefault(vid, c)  # multi-window visits start in their first window
        type_of = {vid: t for t, ids in enumerate(self.vehicles_of_type) for vid in ids}
        pyvrp_routes = []
        for vehicle_id, order in routes.items():
            if vehicle_id not in type_of or not order:
                continue
            visits = [clients_of[v] for v in order if v in clients_of]
            pyvrp_routes.append(pyvrp.Route(self.data, visits, type_of[vehicle_id]))
        try:
            return pyvrp.Solution(self.data, pyvrp_routes)
        except (ValueError, IndexError, RuntimeError):
            return None


class _Reporter(pyvrp.IteratedLocalSearchCallbacks):
    def __init__(self, data: _Data, on_incumbent: OnIncumbent | None) -> None:
        self.data = data
        self.on_incumbent = on_incumbent
        self.reported = False

    def on_iteration(self, current: object, candidate: object, best: pyvrp.Solution, cost_evaluator: object) -> None:
        # The first best is never "new" when the initial solution is already it (a small
        # problem): report it once, so the caller knows the search has an answer.
        if not self.reported:
            self.on_best(best)

    def on_best(self, best: pyvrp.Solution) -> None:
        if self.on_incumbent is not None and best.is_feasible():
            self.reported = True
            cost = best.distance() + best.fixed_vehicle_cost() + best.uncollected_prizes()
            self.on_incumbent(int(cost), self.data.routes_of(best))


def _max_penalty(data: pyvrp.ProblemData) -> float:
    """PyVRP's cap on the penalty per unit of lateness or overload.

    Without prizes, PyVRP's own default (1e5) at :data:`COST_SCALE` 1: the engine's scale is
    PyVRP's, as its penalty manager works in absolute units (a cap, and starting penalties from
    the average arc cost per unit of duration and of load). At 100 cost units a second, with the
    cap raised to twice the largest fixed cost to stay feasible, Gehring-Homberger RC2_10_1 kept
    30-34 vehicles in 40 s where the same data at 1 unit kept 26, as PyVRP on its own does.

    With prizes (optional visits, the prize-collecting search) the cap must let one unit of
    violation outweigh the largest prize: at a tenth of it, a prize-collecting search kept a
    visit by overloading the vehicle by two units.
    """
    largest = max((client.prize for client in data.clients()), default=0)
    return max(DEFAULT_MAX_PENALTY, 2.0 * largest)


def solve_pyvrp(*args: object, **kwargs: object) -> Routes | None:
    """:func:`_solve` with PyVRP's PenaltyBoundWarning silenced: it is expected (and harmless)
    while fleet minimisation tries fleets that are too small, or when the fleet is short."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return _solve(*args, **kwargs)  # type: ignore[arg-type]


def _solve(
    problem: Problem,
    visit_ids: Sequence[str],
    *,
    deadline: float,
    seed: int = 0,
    prizes_only: bool = False,
    fleet_first: bool = False,
    initial: Mapping[str, Sequence[str]] | None = None,
    on_incumbent: OnIncumbent | None = None,
) -> Routes | None:
    """Best feasible routes found by ``deadline``; None when PyVRP found nothing feasible
    (e.g. the fleet cannot serve every required visit and ``prizes_only`` is off).

    ``fleet_first``: when vehicles cost something and are all alike, spend the first 40 % of
    the time on PyVRP's fleet minimisation, then search with the smallest fleet it found (the
    hierarchical objective: fewest vehicles first). If it found no feasible fleet at all, the
    fleet is too small for everyone: the rest of the time goes to the prize-collecting search.
    """
    data = _Data(problem, visit_ids, prizes_only=prizes_only)
    if not data.visit_of_client:
        return {}
    params = pyvrp.SolveParams(
        ils=pyvrp.IteratedLocalSearchParams(callbacks=_Reporter(data, on_incumbent)),
        penalty=pyvrp.PenaltyParams(max_penalty=_max_penalty(data.data)),
    )
    if fleet_first:
        smaller = _fleet_can_shrink(problem, data) and pyvrp.minimise_fleet(
            data.data, MaxRuntime(0.4 * max(0.05, deadline - time.time())), seed=seed, params=params
        )
        if not smaller or smaller.num_available >= data.data.vehicle_type(0).num_available:
            return _solve(problem, visit_ids, deadline=deadline, seed=seed, prizes_only=True, on_incumbent=on_incumbent)
        data.vehicles_of_type = [data.vehicles_of_type[0][: smaller.num_available]]
        data.data = data.data.replace(vehicle_types=[smaller])
    start = data.solution_from(initial) if initial else None
    remaining = max(0.05, deadline - time.time())
    result = pyvrp.solve(
        data.data, MaxRuntime(remaining), seed=seed, collect_stats=False, params=params, initial_solution=start
    )
    if not result.best.is_feasible():
        return None
    return data.routes_of(result.best)


def _fleet_can_shrink(problem: Problem, data: _Data) -> bool:
    """PyVRP's fleet minimisation takes one vehicle type, all clients required, and is worth it
    only when vehicles cost something."""
    return (
        data.data.num_vehicle_types == 1
        and all(problem.task(v).required for v in data.visit_of_client)
        and any(v.fixed_cost > 0 for v in problem.vehicles)
    )


class PyVrp:
    """The engine object (:class:`routing.solver.engine.Engine`)."""

    name = "pyvrp"

    def unsupported(self, problem: Problem, task_ids: Sequence[str]) -> str | None:
        return pyvrp_unsupported(problem, task_ids)

    def alone(self, problem: Problem, seed: int, cores: int) -> EngineRun:
        return EngineRun(self, seed)

    def portfolio(self, problem: Problem, seed: int, cores: int) -> list[EngineRun]:
        if cores < 2:
            # One search that also answers when the fleet cannot take every visit.
            return [EngineRun(self, seed, variant="prizes")]
        # The twin (another seed) first tries a smaller fleet (vehicles first, when they cost
        # something), and otherwise collects prizes, which also answers when the fleet cannot take
        # every visit: plain PyVRP then finds nothing.
        return [EngineRun(self, seed), EngineRun(self, seed + 1, variant="fleet")]

    def run(
        self,
        problem: Problem,
        task_ids: Sequence[str],
        settings: EngineRun,
        *,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: OnIncumbent | None,
    ) -> Routes | None:
        return solve_pyvrp(
            problem,
            task_ids,
            deadline=deadline,
            seed=settings.seed,
            prizes_only=settings.variant == "prizes",
            fleet_first=settings.variant == "fleet",
            initial=initial,
            on_incumbent=on_incumbent,
        )


PYVRP = PyVrp()
