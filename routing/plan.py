"""Plans: what each vehicle does, in order, and who could not be served and why.

A plan's schedule is always computed by :mod:`routing.evaluate` from the order of steps, never
copied from an engine's internal model, so every plan carries the independent evaluator's
verdict in ``violations`` (empty for a feasible plan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepKind(StrEnum):
    START = "start"
    VISIT = "visit"
    STOP = "stop"
    LAB = "lab"
    BREAK = "break"
    END = "end"

    @property
    def is_task(self) -> bool:
        """A home visit or a bus stop: what the plan serves."""
        return self in (StepKind.VISIT, StepKind.STOP)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a route, with its schedule (seconds from midnight).

    ``arrival_s`` is when the vehicle is there and ready, ``wait_s`` how long it waits for the
    window to open, ``start_s`` when service begins, ``departure_s`` when it leaves.
    ``load`` is what the vehicle has used per capacity dimension after this step;
    ``distance_m`` and ``travel_s`` are cumulative from the route's start.
    For a break, ``id`` is the break's id and the location is where it is taken.
    ``people`` is the household size (visit) or the people expected (bus stop); at a lab,
    ``delivered`` is what was handed over and ``oldest_sample_age_s`` the age of the oldest
    sample in it.
    """

    kind: StepKind
    id: str
    location: tuple[float, float]
    arrival_s: float
    wait_s: float
    start_s: float
    service_s: float
    departure_s: float
    load: Mapping[str, int]
    distance_m: float
    travel_s: float
    people: int = 0
    delivered: Mapping[str, int] | None = None
    oldest_sample_age_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.delivered is not None:
            extra = {"delivered": dict(self.delivered), "oldest_sample_age_s": self.oldest_sample_age_s}
        return extra | {
            "kind": self.kind.value,
            "id": self.id,
            "location": list(self.location),
            "arrival_s": self.arrival_s,
            "wait_s": self.wait_s,
            "start_s": self.start_s,
            "service_s": self.service_s,
            "departure_s": self.departure_s,
            "load": dict(self.load),
            "distance_m": self.distance_m,
            "travel_s": self.travel_s,
            "people": self.people,
        }


@dataclass(frozen=True, slots=True)
class Route:
    """A vehicle's day: ``steps`` from ``start`` to ``end`` (or the last visit if open-ended)."""

    vehicle_id: str
    steps: tuple[Step, ...]
    cost: float

    @property
    def visit_ids(self) -> list[str]:
        return [s.id for s in self.steps if s.kind is StepKind.VISIT]

    @property
    def stop_ids(self) -> list[str]:
        return [s.id for s in self.steps if s.kind is StepKind.STOP]

    @property
    def task_ids(self) -> list[str]:
        """Visits and bus stops in order."""
        return [s.id for s in self.steps if s.kind.is_task]

    @property
    def lab_drops(self) -> list[Step]:
        return [s for s in self.steps if s.kind is StepKind.LAB]

    @property
    def start_s(self) -> float:
        return self.steps[0].departure_s

    @property
    def end_s(self) -> float:
        return self.steps[-1].arrival_s

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def distance_m(self) -> float:
        return self.steps[-1].distance_m

    @property
    def travel_s(self) -> float:
        return self.steps[-1].travel_s

    @property
    def wait_s(self) -> float:
        return sum(s.wait_s for s in self.steps)

    @property
    def service_s(self) -> float:
        return sum(s.service_s for s in self.steps if s.kind.is_task)

    @property
    def is_used(self) -> bool:
        return any(s.kind.is_task for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "steps": [s.to_dict() for s in self.steps],
            "cost": self.cost,
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
            "travel_s": self.travel_s,
            "wait_s": self.wait_s,
            "service_s": self.service_s,
        }


class Reason(StrEnum):
    """Why a visit, bus stop or demand area is not in the plan. Nobody is dropped without one."""

    NO_SKILLED_VEHICLE = "no_skilled_vehicle"
    """No vehicle has every skill the visit requires."""
    OVER_CAPACITY = "over_capacity"
    """The visit's demand exceeds the capacity of every vehicle that has the skills."""
    UNREACHABLE = "unreachable"
    """No suitable vehicle can reach it within its shift and the visit's windows, even alone."""
    FLEET_FULL = "fleet_full"
    """It could be served alone, but the fleet's time or capacity went to other visits."""
    NOT_WORTH_SERVING = "not_worth_serving"
    """An optional visit whose penalty is lower than what serving it would cost."""
    ALTERNATIVE_USED = "alternative_used"
    """A bus stop whose alternative (another stop of its group) is used: at most one of a group is."""
    NO_STOP_IN_WALKING_RANGE = "no_stop_in_walking_range"
    """A demand area with no candidate bus stop within its walking limit."""
    STOPS_FULL = "stops_full"
    """Every stop within walking range would overrun its longest allowed stay."""
    STOP_NOT_SERVED = "stop_not_served"
    """The area's chosen bus stop could not be fitted into any bus's day."""
    LEFT_OUT_BY_HAND = "left_out_by_hand"
    """A dispatcher's hand edit took it off every route (plan mode, ``service.drafts``)."""


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A visit or bus stop (``kind``) left out of the plan, with its reason.

    ``visit_id`` names the visit, or the bus stop when ``kind`` is ``"stop"``.
    """

    visit_id: str
    reason: Reason
    detail: str
    kind: str = "visit"

    def to_dict(self) -> dict[str, str]:
        return {"visit_id": self.visit_id, "kind": self.kind, "reason": self.reason.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class AreaCoverage:
    """Which bus stop serves a demand area and how far its people walk, or why none does."""

    area_id: str
    population: int
    stop_id: str | None
    walk_m: float | None
    reason: Reason | None = None
    detail: str = ""

    @property
    def covered(self) -> bool:
        return self.stop_id is not None and self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "area_id": self.area_id,
            "population": self.population,
            "stop_id": self.stop_id,
            "walk_m": self.walk_m,
            "covered": self.covered,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
        }


class ViolationKind(StrEnum):
    UNKNOWN_SITE = "unknown_site"
    DUPLICATE_VISIT = "duplicate_visit"
    MISSING_SKILL = "missing_skill"
    OVER_CAPACITY = "over_capacity"
    LATE = "late"
    NO_PATH = "no_path"
    SHIFT_OVERRUN = "shift_overrun"
    MAX_DURATION = "max_duration"
    BREAK_LATE = "break_late"
    BREAK_MISSING = "break_missing"
    WRONG_VEHICLE = "wrong_vehicle"
    DWELL_TOO_LONG = "dwell_too_long"
    ALTERNATIVE_TWICE = "alternative_twice"
    SAMPLE_TOO_OLD = "sample_too_old"
    SAMPLES_UNDELIVERED = "samples_undelivered"


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule a route breaks, found by the evaluator. ``step_id`` is None for the whole route."""

    vehicle_id: str
    kind: ViolationKind
    step_id: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "vehicle_id": self.vehicle_id,
            "kind": self.kind.value,
            "step_id": self.step_id,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer: routes (one per vehicle, used or not), unassigned visits with reasons,
    the evaluator's violations (empty when feasible), the cost and how it was found."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    violations: tuple[Violation, ...]
    cost: float
    engine: str = ""
    solve_s: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    coverage: tuple[AreaCoverage, ...] = ()

    @property
    def is_feasible(self) -> bool:
        return not self.violations

    @property
    def used_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.is_used)

    def route(self, vehicle_id: str) -> Route:
        for route in self.routes:
            if route.vehicle_id == vehicle_id:
                return route
        raise KeyError(vehicle_id)

    def summary(self) -> dict[str, Any]:
        used = self.used_routes
        drops = [s for r in used for s in r.lab_drops]
        ages = [s.oldest_sample_age_s for s in drops if s.oldest_sample_age_s is not None]
        unassigned_by_reason: dict[str, int] = {}
        for u in self.unassigned:
            unassigned_by_reason[u.reason.value] = unassigned_by_reason.get(u.reason.value, 0) + 1
        for a in self.coverage:
            if a.reason is not None:
                key = f"area:{a.reason.value}"
                unassigned_by_reason[key] = unassigned_by_reason.get(key, 0) + 1
        return {
            "cost": self.cost,
            "vehicles_used": len(used),
            "visits_assigned": sum(len(r.visit_ids) for r in used),
            "visits_unassigned": sum(1 for u in self.unassigned if u.kind == "visit"),
            "stops_served": sum(len(r.stop_ids) for r in used),
            "people_covered": sum(a.population for a in self.coverage if a.covered),
            "people_total": sum(a.population for a in self.coverage),
            "unassigned_by_reason": unassigned_by_reason,
            "lab_drops": len(drops),
            "max_sample_age_s": max(ages, default=None),
            "distance_m": sum(r.distance_m for r in used),
            "travel_s": sum(r.travel_s for r in used),
            "wait_s": sum(r.wait_s for r in used),
            "service_s": sum(r.service_s for r in used),
            "feasible": self.is_feasible,
            "engine": self.engine,
            "solve_s": self.solve_s,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "routes": [r.to_dict() for r in self.routes],
            "unassigned": [u.to_dict() for u in self.unassigned],
            "violations": [v.to_dict() for v in self.violations],
            "coverage": [a.to_dict() for a in self.coverage],
            "stats": dict(self.stats),
        }
