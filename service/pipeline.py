"""One way from a plan request to its plan document, for every caller (the worker, the CLI, the
demo, re-plans, plan mode and ``/v1/matrix``):

    request -> travel matrices on the road network -> Problem -> solve -> road geometry -> document

Matrices come from the :class:`~service.networks.NetworkRegistry`, which keeps each network's
recent matrices in memory and on disk (``DOORSTEP_DATA_DIR``/cache/matrices): a re-plan, a
retried job or the same day solved twice computes none again. A request with its own matrices
skips the network, which then only draws the routes if the server has it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.errors import ProblemError
from routing.model import Problem, TravelMatrix
from routing.plan import Plan
from service.networks import NetworkRegistry
from service.schemas import PlanDocument, PlanRequest, plan_document, to_problem

log = logging.getLogger(__name__)

Geometry = Callable[[str, list[tuple[float, float]]], list[list[float]] | None]
"""Vehicle id and its route's points -> the line along the streets ([lon, lat] pairs), if any."""

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request made ready to solve: its problem, and how to draw its routes (None: no network)."""

    request: PlanRequest
    problem: Problem
    geometry: Geometry | None


def prepare(request: PlanRequest, registry: NetworkRegistry) -> Prepared:
    """The request's problem over travel matrices from its network (or its own matrices).

    Raises :class:`ProblemError` naming the request field (a site too far from the roads names
    its ``location``); :class:`~routing.errors.NetworkError` when the network cannot load.
    """
    if request.matrices is None:
        matrices = network_matrices(request, registry)
        problem = to_problem(request, matrices, area_walk_m=network_area_walk(request, registry))
        return Prepared(request, problem, road_geometry(request, registry))
    drawn = road_geometry(request, registry) if request.network in registry.names else None
    return Prepared(request, to_problem(request), drawn)


def solve_prepared(
    prepared: Prepared,
    solve: Callable[..., Plan],
    *,
    time_limit_s: float,
    seed: int | None = None,
    engine: str | None = None,
    on_progress: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Plan:
    """``solve`` (``routing.solver.solve`` or a stand-in) with the request's options."""
    options = prepared.request.options
    return solve(
        prepared.problem,
        time_limit_s=time_limit_s,
        seed=options.seed if seed is None else seed,
        engine=engine or options.engine,
        full_budget=options.full_budget,
        on_progress=on_progress,
        initial=options.initial_routes,
        should_stop=should_stop,
    )


def document_of(prepared: Prepared, plan: Plan) -> PlanDocument:
    """The plan document, its used routes drawn along the streets when there is a network."""
    geometries = None
    if prepared.geometry is not None:
        geometries = {}
        for route in plan.used_routes:
            line = prepared.geometry(route.vehicle_id, [step.location for step in route.steps])
            if line:
                geometries[route.vehicle_id] = line
    return plan_document(prepared.problem, plan, geometries)


# -- the road network's part ---------------------------------------------------------------------------


def network_matrices(
    request: PlanRequest, registry: NetworkRegistry, extra: Sequence[tuple[str, Point]] = (),
    profiles: Sequence[str] | None = None,
) -> dict[str, TravelMatrix]:
    """Travel matrices on the request's network over its sites, then the ``extra`` (id, point)s
    (a re-plan's new visits and crews' positions), per profile (default: its vehicles')."""
    name = registry.resolve(request.network)
    points = [(s.location[0], s.location[1]) for s in request.sites] + [p for _, p in extra]
    ids = [s.id for s in request.sites] + [i for i, _ in extra]
    try:
        return {profile: registry.travel_matrix(name, profile, points, ids)
                for profile in (request.profiles if profiles is None else profiles)}
    except ProblemError as error:
        raise site_error(error, request) from None


def road_geometry(request: PlanRequest, registry: NetworkRegistry) -> Geometry:
    """The function drawing a vehicle's route along the streets of the request's network."""
    from routing.matrix import route_geometry

    name = registry.resolve(request.network)
    profiles = {v.id: v.profile for v in request.vehicles}

    def geometry(vehicle_id: str, route_points: list[tuple[float, float]]) -> list[list[float]] | None:
        try:
            line = route_geometry(registry.get(name, profiles[vehicle_id]), route_points)
        except Exception:
            log.warning("no geometry for vehicle %s", vehicle_id, exc_info=True)
            return None
        return [[float(x), float(y)] for x, y, *_ in line.coords]

    return geometry


def site_error(error: ProblemError, request: PlanRequest) -> ProblemError:
    """A snapping error (path ``(site id,)``) re-pointed at the request field of that site."""
    if len(error.path) == 1 and isinstance(error.path[0], str):
        field = request.site_field(error.path[0])
        if field is not None:
            kind, index = field
            return type(error)(str(error), path=(kind, index, "location"))
    return error


def network_area_walk(request: PlanRequest, registry: NetworkRegistry) -> np.ndarray | None:
    """Walking metres from each demand area to each bus stop on the network's walk profile
    (areas off the footways: ``inf``, so uncovered); None when there is nothing to walk."""
    if not request.areas or not request.stops:
        return None
    from routing.model import BusStop, DemandArea
    from routing.walking import area_walk_m

    walk = registry.get(registry.resolve(request.network), "walk")
    areas = [DemandArea(a.id, a.resolved_location, a.population, a.walk_limit_m) for a in request.areas]
    stops = [BusStop(s.id, s.location) for s in request.stops]
    return area_walk_m(walk, areas, stops, max_snap_m=registry.settings.max_snap_m)
