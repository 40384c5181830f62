"""The plan document: the one JSON document a solved plan is shown as, and its response models.

:func:`plan_document` builds it; the API's ``GET /v1/plans/{id}`` ``plan``, the exports
(``service.exports``) and the CLI all read it. :class:`PlanDocument` describes it in the OpenAPI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from routing.model import Lab, Problem, TimeWindow
from routing.plan import Plan, Route, StepKind
from service.schemas.times import clock


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars, tuples, mappings and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _num(value: float) -> float | int:
    """Whole numbers as ints (seconds and metres read better), others rounded to 0.1."""
    if not math.isfinite(value):
        return value
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded


def _round_floats(document: dict[str, Any], *keys: str) -> None:
    """:func:`_num` over the float values of ``keys`` in ``document``, in place."""
    for key in keys:
        if isinstance(document.get(key), float):
            document[key] = _num(document[key])


def _window_out(window: TimeWindow) -> dict[str, Any]:
    return {
        "start_s": window.start_s,
        "start": clock(window.start_s),
        "end_s": window.end_s,
        "end": clock(window.end_s),
    }


def _route_document(
    problem: Problem,
    route: Route,
    geometry: Sequence[Sequence[float]] | None,
    catchments: Mapping[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    vehicle = problem.vehicle(route.vehicle_id)
    steps: list[dict[str, Any]] = []
    previous_tubes = 0
    for step in route.steps:
        out: dict[str, Any] = {
            "kind": step.kind.value,
            "id": step.id,
            "location": [step.location[0], step.location[1]],
            "arrival_s": _num(step.arrival_s),
            "arrival": clock(step.arrival_s),
            "wait_s": _num(step.wait_s),
            "start_s": _num(step.start_s),
            "start": clock(step.start_s),
            "service_s": _num(step.service_s),
            "departure_s": _num(step.departure_s),
            "departure": clock(step.departure_s),
            "load": dict(step.load),
            "distance_m": _num(step.distance_m),
            "travel_s": _num(step.travel_s),
            "people": None,
            "priority": None,
            "address": None,
            "notes": None,
            "contact": None,
            "time_windows": [],
        }
        if step.kind is StepKind.VISIT:
            visit = problem.visit(step.id)
            out.update(
                people=visit.people,
                priority=visit.priority.name.lower(),
                address=visit.address,
                notes=visit.notes,
                contact=visit.contact,
                time_windows=[_window_out(w) for w in visit.time_windows],
            )
        elif step.kind is StepKind.STOP:
            stop = problem.task(step.id)
            tubes = int(step.load.get("tubes", 0)) - previous_tubes
            out.update(
                people=step.people,
                address=stop.address,
                notes=stop.notes,
                time_windows=[_window_out(w) for w in stop.time_windows],
                dwell_s=_num(step.service_s),
                tubes=max(tubes, 0) if "tubes" in step.load else None,
                areas=catchments.get(stop.id, []),
            )
        elif step.kind is StepKind.LAB:
            lab = problem.site(step.id)
            assert isinstance(lab, Lab)
            age = step.oldest_sample_age_s
            out.update(
                time_windows=[_window_out(w) for w in lab.opening],
                delivered=dict(step.delivered or {}),
                oldest_sample_age_s=None if age is None else _num(age),
            )
        elif step.kind is StepKind.BREAK:
            for brk in vehicle.breaks:
                if brk.id == step.id:
                    out["time_windows"] = [_window_out(brk.window)]
        previous_tubes = int(step.load.get("tubes", 0))
        steps.append(out)
    coordinates = [[float(x), float(y)] for x, y, *_ in geometry] if geometry else None
    return {
        "vehicle_id": route.vehicle_id,
        "kind": vehicle.kind.value,
        "profile": vehicle.profile,
        "distance_m": _num(route.distance_m),
        "duration_s": _num(route.duration_s),
        "travel_s": _num(route.travel_s),
        "wait_s": _num(route.wait_s),
        "service_s": _num(route.service_s),
        "cost": _num(route.cost),
        "start": clock(route.start_s),
        "end": clock(route.end_s),
        "geometry": {"type": "LineString", "coordinates": coordinates} if coordinates else None,
        "steps": steps,
    }


def plan_document(
    problem: Problem,
    plan: Plan,
    geometries: Mapping[str, Sequence[Sequence[float]]] | None = None,
) -> PlanDocument:
    """The document of a plan, shared by the API, the exports, field operations and the CLI;
    stored as its JSON dump and read back with :func:`read_document`.

    ``routes`` lists the vehicles that are used (as VROOM does), each with its ordered steps and
    their schedule; ``geometries`` (vehicle id -> ``[[lon, lat], ...]``) gives each route's road
    line, else ``geometry`` is null. Visits' addresses, ``notes`` and ``contact`` are in the
    steps: the document is personal data and must never be logged.
    """
    geometries = geometries or {}
    summary = jsonable(plan.summary())
    _round_floats(summary, "cost", "distance_m", "travel_s", "wait_s", "service_s", "solve_s", "max_sample_age_s")
    summary["vehicles"] = len(problem.vehicles)
    summary["visits"] = len(problem.visits)
    summary["stops"] = len(problem.stops)
    summary["areas"] = len(problem.areas)
    summary["labs"] = len(problem.labs)
    summary["max_sample_age_limit_s"] = problem.max_sample_age_s
    coverage = _coverage_document(problem, plan)
    catchments: dict[str, list[dict[str, Any]]] = {}
    for entry in coverage:
        if entry["covered"]:
            catchments.setdefault(entry["stop_id"], []).append(
                {"area_id": entry["area_id"], "population": entry["population"], "walk_m": entry["walk_m"]}
            )
    locations = {site.id: list(site.location) for site in problem.sites}
    unassigned: list[dict[str, Any]] = [
        {**u.to_dict(), "location": locations.get(u.visit_id)} for u in plan.unassigned
    ]
    return PlanDocument.model_validate({
        "summary": summary,
        "routes": [
            _route_document(problem, route, geometries.get(route.vehicle_id), catchments)
            for route in plan.used_routes
        ],
        "unassigned": unassigned,
        "coverage": coverage,
        "violations": [jsonable(v.to_dict()) for v in plan.violations],
        "stats": jsonable(plan.stats),
    })


def read_document(stored: Mapping[str, Any] | None) -> PlanDocument | None:
    """A stored plan document (a :class:`PlanDocument`'s JSON dump), validated."""
    return None if stored is None else PlanDocument.model_validate(stored)


def dump_document(document: PlanDocument) -> dict[str, Any]:
    """What is stored and sent: the document as JSON-ready data."""
    return document.model_dump(mode="json")


def _coverage_document(problem: Problem, plan: Plan) -> list[dict[str, Any]]:
    """Per demand area: the stop serving it and the walk, or why none does; with the locations
    (the area's, its polygon, the stop's) that maps draw catchments from."""
    areas = {a.id: a for a in problem.areas}
    out: list[dict[str, Any]] = []
    for cover in plan.coverage:
        entry = jsonable(cover.to_dict())
        _round_floats(entry, "walk_m")
        area = areas.get(cover.area_id)
        entry["location"] = None if area is None else list(area.location)
        entry["polygon"] = None if area is None or area.polygon is None else [list(p) for p in area.polygon]
        entry["stop_location"] = None if cover.stop_id is None else list(problem.site(cover.stop_id).location)
        out.append(entry)
    return out


# -- response models ----------------------------------------------------------------------------------


class TimeWindowOut(BaseModel):
    start_s: int
    start: str
    end_s: int
    end: str


class CatchmentOut(BaseModel):
    area_id: str
    population: int
    walk_m: float | None = None


class StepOut(BaseModel):
    kind: Literal["start", "visit", "stop", "lab", "break", "end"]
    id: str
    location: tuple[float, float]
    arrival_s: float
    arrival: str
    wait_s: float
    start_s: float
    start: str
    service_s: float
    departure_s: float
    departure: str
    load: dict[str, int]
    distance_m: float = Field(description="Cumulative from the route's start.")
    travel_s: float = Field(description="Cumulative from the route's start.")
    people: int | None = None
    priority: str | None = None
    address: str | None = None
    notes: str | None = None
    contact: str | None = None
    time_windows: list[TimeWindowOut] = Field(default_factory=list)
    dwell_s: float | None = Field(default=None, description="Bus stop: time parked (setup + sampling).")
    tubes: int | None = Field(default=None, description="Bus stop: tubes filled here.")
    areas: list[CatchmentOut] | None = Field(default=None, description="Bus stop: the demand areas it serves.")
    delivered: dict[str, int] | None = Field(default=None, description="Lab: what was handed over.")
    oldest_sample_age_s: float | None = Field(default=None, description="Lab: age of the oldest sample handed over.")


class GeometryOut(BaseModel):
    type: Literal["LineString"] = "LineString"
    coordinates: list[tuple[float, float]]


class RouteOut(BaseModel):
    vehicle_id: str
    kind: str
    profile: str
    distance_m: float
    duration_s: float
    travel_s: float
    wait_s: float
    service_s: float
    cost: float
    start: str
    end: str
    geometry: GeometryOut | None = None
    steps: list[StepOut]


class UnassignedOut(BaseModel):
    visit_id: str = Field(description="The visit, or the bus stop when `kind` is stop.")
    kind: str = "visit"
    reason: str = Field(
        description="no_skilled_vehicle, over_capacity, unreachable, fleet_full, not_worth_serving or "
        "alternative_used (bus stops)."
    )
    detail: str
    location: tuple[float, float] | None = None


class CoverageOut(BaseModel):
    """A demand area: the bus stop serving it and the walk, or the reason it is uncovered."""

    area_id: str
    population: int
    stop_id: str | None
    walk_m: float | None
    covered: bool
    reason: str | None = Field(
        default=None, description="no_stop_in_walking_range, stops_full or stop_not_served; null when covered."
    )
    detail: str = ""
    location: tuple[float, float] | None = None
    polygon: list[tuple[float, float]] | None = None
    stop_location: tuple[float, float] | None = None


class ViolationOut(BaseModel):
    vehicle_id: str
    kind: str
    step_id: str | None
    message: str


class PlanDocument(BaseModel):
    summary: dict[str, Any]
    routes: list[RouteOut]
    unassigned: list[UnassignedOut]
    coverage: list[CoverageOut] = Field(default_factory=list)
    violations: list[ViolationOut]
    stats: dict[str, Any]

    def route(self, vehicle_id: str) -> RouteOut | None:
        return next((r for r in self.routes if r.vehicle_id == vehicle_id), None)
