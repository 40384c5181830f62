"""Tiny named problems on a straight street, easy to reason about by hand.

Sites sit on a line; travel takes one second per 10 m both ways (drive) or one per metre
(walk). Coordinates are near Helsinki only so they are valid (lon, lat).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from routing.model import BusStop, DemandArea, Depot, Lab, Objective, Problem, TimeWindow, TravelMatrix, Vehicle, Visit

H = 3600
DAY = TimeWindow(8 * H, 16 * H)


def at(x_m: float) -> tuple[float, float]:
    return (24.94 + x_m / 55_000, 60.17)


def line_matrix(positions: Sequence[float], *, metres_per_s: float) -> TravelMatrix:
    x = np.asarray(positions, dtype=float)
    distances = np.abs(x[:, None] - x[None, :])
    return TravelMatrix(distances / metres_per_s, distances)


def street_problem(
    visits: Sequence[tuple[Visit, float]],
    vehicles: Sequence[Vehicle],
    *,
    depots: Sequence[tuple[str, float]] = (("depot", 0.0),),
    objective: Objective | None = None,
) -> Problem:
    """Depots and visits at the given metres along the street; drive and walk matrices."""
    positions = [x for _, x in depots] + [x for _, x in visits]
    return Problem(
        depots=[Depot(name, at(x)) for name, x in depots],
        vehicles=vehicles,
        visits=[v for v, _ in visits],
        matrices={
            "drive": line_matrix(positions, metres_per_s=10.0),
            "walk": line_matrix(positions, metres_per_s=1.0),
        },
        objective=objective,
    )


def visit(visit_id: str, x_m: float, **fields: object) -> tuple[Visit, float]:
    fields.setdefault("setup_s", 300)
    fields.setdefault("per_person_s", 60)
    return Visit(visit_id, at(x_m), **fields), x_m  # type: ignore[arg-type]


def team(vehicle_id: str, **fields: object) -> Vehicle:
    fields.setdefault("shift", DAY)
    fields.setdefault("start_depot", "depot")
    fields.setdefault("end_depot", "depot")
    return Vehicle(vehicle_id, **fields)  # type: ignore[arg-type]


def stop(stop_id: str, x_m: float, **fields: object) -> tuple[BusStop, float]:
    return BusStop(stop_id, at(x_m), **fields), x_m  # type: ignore[arg-type]


def lab(lab_id: str, x_m: float, **fields: object) -> tuple[Lab, float]:
    return Lab(lab_id, at(x_m), **fields), x_m  # type: ignore[arg-type]


def bus(vehicle_id: str, **fields: object) -> Vehicle:
    fields.setdefault("kind", "bus")
    return team(vehicle_id, **fields)


def district_problem(
    *,
    vehicles: Sequence[Vehicle],
    visits: Sequence[tuple[Visit, float]] = (),
    stops: Sequence[tuple[BusStop, float]] = (),
    labs: Sequence[tuple[Lab, float]] = (),
    areas: Sequence[tuple[str, float, int]] = (),
    walk_limit_m: float = 400.0,
    **problem_fields: object,
) -> Problem:
    """A street with depot at 0, visits, bus stops and labs; areas (id, metres, people) walk
    along the street to stops (walk metres = distance along the street)."""
    positions = [0.0] + [x for _, x in visits] + [x for _, x in stops] + [x for _, x in labs]
    area_x = np.array([x for _, x, _ in areas], dtype=float)
    stop_x = np.array([x for _, x in stops], dtype=float)
    return Problem(
        depots=[Depot("depot", at(0))],
        vehicles=vehicles,
        visits=[v for v, _ in visits],
        stops=[s for s, _ in stops],
        labs=[lab_ for lab_, _ in labs],
        areas=[DemandArea(a, at(x), people, walk_limit_m) for a, x, people in areas],
        area_walk_m=np.abs(area_x[:, None] - stop_x[None, :]) if areas else None,
        matrices={
            "drive": line_matrix(positions, metres_per_s=10.0),
            "walk": line_matrix(positions, metres_per_s=1.0),
        },
        **problem_fields,  # type: ignore[arg-type]
    )
