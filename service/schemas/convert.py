"""The one boundary between the wire and the routing model: :func:`to_problem`, whose errors name
the request field they come from, and its inverse :func:`to_request`.

``to_request(to_problem(r))`` keeps every field the wire format has (objective weights, breaks,
lanes, stops, areas, labs, addresses, notes): re-plans, carry-over and evaluate turn problems
back into requests here and nowhere else (``tests/service/test_boundary.py`` holds it to that).
What the model derives is written out as derived: a visit's ``demand`` (from ``pooled``), a
vehicle's ``end_depot``, an area's ``location`` (its polygon's centroid).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from routing.errors import ProblemError
from routing.model import (
    Break,
    BusStop,
    DemandArea,
    Depot,
    Lab,
    Objective,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    Visit,
)
from service.schemas.buses_in import AreaIn, LabIn, StopIn
from service.schemas.problem_in import DepotIn, ObjectiveIn, OptionsIn, VehicleIn, VisitIn
from service.schemas.request import PlanRequest
from service.schemas.times import TimeWindowIn

_Path = tuple[str | int, ...]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_WireT = TypeVar("_WireT", bound=_Identified)
_ModelT = TypeVar("_ModelT")


def _prefixed(error: ProblemError, prefix: Sequence[str | int], where: str = "") -> ProblemError:
    message = str(error)
    if where and not message.startswith(where):
        message = f"{where}: {message}"
    return type(error)(message, path=(*prefix, *error.path))


def _window(window: TimeWindowIn, where: str, path: _Path) -> TimeWindow:
    try:
        return TimeWindow(window.start, window.end)
    except ProblemError as error:
        raise ProblemError(f"{where}: {error}", path=path) from None


def _windows(windows: Sequence[TimeWindowIn], where: str, path: _Path) -> tuple[TimeWindow, ...]:
    """Each window of the request list at ``path``; an error names the window's index."""
    return tuple(_window(w, where, (*path, j)) for j, w in enumerate(windows))


def _each(
    kind: str,
    items: Sequence[_WireT],
    label: str,
    build: Callable[[_WireT, int, str], _ModelT],
) -> list[_ModelT]:
    """``build(item, i, where)`` for the request list ``kind`` (e.g. ``"visits"``).

    A :class:`ProblemError` from the model is re-raised with its path under ``(kind, i)`` and its
    message under ``where`` (``label "id"``; no label, no prefix); one whose path already starts
    with ``kind`` (a time window's) names its field already and passes through.
    """
    built: list[_ModelT] = []
    for i, item in enumerate(items):
        where = f'{label} "{item.id}"' if label else ""
        try:
            built.append(build(item, i, where))
        except ProblemError as error:
            if error.path[:1] == (kind,):
                raise
            raise _prefixed(error, (kind, i), where) from None
    return built


def to_problem(
    request: PlanRequest,
    matrices: Mapping[str, TravelMatrix] | None = None,
    *,
    area_walk_m: np.ndarray | None = None,
) -> Problem:
    """The routing problem of a request, over ``matrices`` (default: the request's own).

    ``area_walk_m`` (areas x stops, metres along footways; :func:`routing.walking.area_walk_m`)
    comes from the walk network when the server routes on one; without it the library takes
    straight-line distance times ``routing.model.WALK_DETOUR_FACTOR``.

    Raises :class:`ProblemError` whose ``path`` names the request field (e.g.
    ``("visits", 3, "time_windows", 0)``); the API answers it with 422 and ``loc`` =
    ``["body", *path]``.
    """
    if matrices is None:
        if request.matrices is None:
            raise ProblemError(
                "no travel matrices: give `matrices`, or a `network` the server computes them on",
                path=("matrices",),
            )
        matrices = {}
        for profile, matrix in request.matrices.items():
            try:
                matrices[profile] = matrix.to_travel_matrix()
            except ProblemError as error:
                raise _prefixed(error, ("matrices", profile), f'travel matrix "{profile}"') from None
    depots = _each("depots", request.depots, "", _depot)
    vehicles = _each("vehicles", request.vehicles, "Vehicle", _vehicle)
    visits = _each("visits", request.visits, "Visit", _visit)
    stops = _each("stops", request.stops, "Bus stop", _stop)
    areas = _each("areas", request.areas, "Area", _area)
    labs = _each("labs", request.labs, "Lab", _lab)
    try:
        objective = Objective(**request.objective.model_dump())
    except ProblemError as error:
        raise _prefixed(error, ("objective",)) from None
    return Problem(
        depots=depots,
        vehicles=vehicles,
        visits=visits,
        matrices=matrices,
        objective=objective,
        stops=stops,
        areas=areas,
        labs=labs,
        area_walk_m=area_walk_m,
        max_sample_age_s=request.max_sample_age_s,
    )


def _depot(depot: DepotIn, i: int, where: str) -> Depot:
    return Depot(depot.id, depot.location)


def _vehicle(v: VehicleIn, i: int, where: str) -> Vehicle:
    return Vehicle(
        id=v.id,
        start_depot=v.start_depot,
        end_depot=v.resolved_end_depot,
        shift=_window(v.shift, f"{where}: shift", ("vehicles", i, "shift")),
        kind=v.kind,
        capacity=v.capacity,
        skills=frozenset(v.skills),
        profile=v.profile,
        breaks=tuple(
            Break(
                b.id,
                _window(
                    TimeWindowIn(start=b.start, end=b.end),
                    f'{where}: break "{b.id}"',
                    ("vehicles", i, "breaks", j),
                ),
                b.duration_s,
            )
            for j, b in enumerate(v.breaks)
        ),
        max_duration_s=v.max_duration_s,
        fixed_cost=v.fixed_cost,
        speed_factor=v.speed_factor,
        lanes=v.lanes,
        seconds_per_person=v.seconds_per_person,
    )


def _visit(visit: VisitIn, i: int, where: str) -> Visit:
    return Visit(
        id=visit.id,
        location=visit.location,
        people=visit.people,
        setup_s=visit.setup_s,
        per_person_s=visit.per_person_s,
        time_windows=_windows(visit.time_windows, f"{where}: time window", ("visits", i, "time_windows")),
        priority=visit.priority,
        skills=frozenset(visit.skills),
        demand=visit.resolved_demand,
        required=visit.required,
        penalty=visit.penalty,
        notes=visit.notes,
        contact=visit.contact,
        preferred_vehicle=visit.preferred_vehicle,
        address=visit.address,
    )


def _stop(stop: StopIn, i: int, where: str) -> BusStop:
    return BusStop(
        id=stop.id,
        location=stop.location,
        people=stop.people or 0,
        time_windows=_windows(stop.time_windows, f"{where}: time window", ("stops", i, "time_windows")),
        required=stop.required,
        group=stop.group,
        max_dwell_s=stop.max_dwell_s,
        setup_s=stop.setup_s,
        demand=stop.resolved_demand,
        notes=stop.notes,
        address=stop.address,
    )


def _area(area: AreaIn, i: int, where: str) -> DemandArea:
    return DemandArea(
        id=area.id,
        location=area.resolved_location,
        population=area.population,
        walk_limit_m=area.walk_limit_m,
        polygon=None if area.polygon is None else tuple(area.polygon),
    )


def _lab(lab: LabIn, i: int, where: str) -> Lab:
    return Lab(
        id=lab.id,
        location=lab.location,
        opening=_windows(lab.opening, f"{where}: opening", ("labs", i, "opening")),
        handover_s=lab.handover_s,
    )


# -- model to wire -----------------------------------------------------------------------------------


def to_request(
    problem: Problem,
    *,
    name: str | None = None,
    network: str | None = None,
    options: OptionsIn | Mapping[str, Any] | None = None,
) -> PlanRequest:
    """The plan request of ``problem``, with its travel matrices: the inverse of :func:`to_problem`.

    The request envelope the model does not hold (``name``, ``network``, ``options``) is given.
    With ``network`` and matrices, the network only draws the routes (a re-planned version).
    """
    if options is not None and not isinstance(options, OptionsIn):
        options = OptionsIn.model_validate(options)
    wire: dict[str, Any] = {
        "name": name,
        "network": network,
        "matrices": {profile: _matrix_wire(m) for profile, m in problem.matrices.items()},
        "depots": [{"id": d.id, "location": list(d.location)} for d in problem.depots],
        "vehicles": [_vehicle_wire(v) for v in problem.vehicles],
        "visits": [_visit_wire(v) for v in problem.visits],
        "stops": [_stop_wire(s) for s in problem.stops],
        "areas": [_area_wire(a) for a in problem.areas],
        "labs": [_lab_wire(lab) for lab in problem.labs],
        "max_sample_age_s": problem.max_sample_age_s,
        "objective": {field: getattr(problem.objective, field) for field in ObjectiveIn.model_fields},
    }
    if options is not None:
        wire["options"] = options.model_dump(mode="json", exclude_unset=True)
    return PlanRequest.model_validate(wire)


def _window_wire(window: TimeWindow) -> dict[str, int]:
    return {"start": window.start_s, "end": window.end_s}


def _matrix_wire(matrix: TravelMatrix) -> dict[str, list[list[float | None]]]:
    def rows(array: np.ndarray) -> list[list[float | None]]:
        return [[v if math.isfinite(v) else None for v in row] for row in array.tolist()]

    return {"durations_s": rows(matrix.durations_s), "distances_m": rows(matrix.distances_m)}


def _vehicle_wire(v: Vehicle) -> dict[str, Any]:
    return {
        "id": v.id, "kind": v.kind.value, "start_depot": v.start_depot, "end_depot": v.end_depot,
        "shift": _window_wire(v.shift), "capacity": dict(v.capacity), "skills": sorted(v.skills),
        "profile": v.profile,
        "breaks": [{"id": b.id, "start": b.window.start_s, "end": b.window.end_s, "duration_s": b.duration_s}
                   for b in v.breaks],
        "max_duration_s": v.max_duration_s, "fixed_cost": v.fixed_cost, "speed_factor": v.speed_factor,
        "lanes": v.lanes, "seconds_per_person": v.seconds_per_person,
    }


def _visit_wire(visit: Visit) -> dict[str, Any]:
    return {
        "id": visit.id, "location": list(visit.location), "people": visit.people, "setup_s": visit.setup_s,
        "per_person_s": visit.per_person_s, "time_windows": [_window_wire(w) for w in visit.time_windows],
        "priority": int(visit.priority), "skills": sorted(visit.skills), "demand": dict(visit.demand),
        "required": visit.required, "penalty": visit.penalty, "notes": visit.notes, "contact": visit.contact,
        "preferred_vehicle": visit.preferred_vehicle, "address": visit.address,
    }


def _stop_wire(stop: BusStop) -> dict[str, Any]:
    # people 0 and no demand is what an omitted `people` becomes: with demand areas the
    # coverage step derives both again (routing.coverage), as it did the first time.
    return {
        "id": stop.id, "location": list(stop.location), "people": stop.people,
        "time_windows": [_window_wire(w) for w in stop.time_windows], "required": stop.required,
        "group": stop.group, "max_dwell_s": stop.max_dwell_s, "setup_s": stop.setup_s,
        "demand": dict(stop.demand), "notes": stop.notes, "address": stop.address,
    }


def _area_wire(area: DemandArea) -> dict[str, Any]:
    return {
        "id": area.id, "location": list(area.location), "population": area.population,
        "walk_limit_m": area.walk_limit_m,
        "polygon": None if area.polygon is None else [list(p) for p in area.polygon],
    }


def _lab_wire(lab: Lab) -> dict[str, Any]:
    return {"id": lab.id, "location": list(lab.location), "opening": [_window_wire(w) for w in lab.opening],
            "handover_s": lab.handover_s}


def error_loc(error: ProblemError) -> list[str | int]:
    """The 422 ``loc`` of a :class:`ProblemError` raised for a request body."""
    return ["body", *error.path]
