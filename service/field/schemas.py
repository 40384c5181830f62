"""Wire models of field operations: ledger entries, progress, re-planning, versions, plan mode.

Same conventions as :mod:`service.schemas` (times as seconds or ``"HH:MM"``, ids owned by the
caller). Notes and contacts are personal data: answered only to those allowed to see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from service.ledger import Outcome
from service.schemas import (
    MAX_AMOUNT,
    Id,
    LonLat,
    MatrixIn,
    OptionsIn,
    PlanDocument,
    PlanRequest,
    Profile,
    TimeOfDay,
    VehicleIn,
    VisitIn,
    _In,
)

# -- ledger ------------------------------------------------------------------------------------------


class EventIn(_In):
    """One step's outcome (or arrival) as a crew records it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"vehicle_id": "team-1", "step_id": "v-1", "outcome": "done", "at": "09:12", "arrival": "09:02",
         "departure": "09:12", "people_sampled": 2, "tubes_used": 2, "idempotency_key": "team-1-v-1-done"},
        {"vehicle_id": "team-1", "step_id": "v-2", "outcome": "not_home", "at": "09:30",
         "note": "neighbour says back after 14:00"},
    ]})

    vehicle_id: Id
    step_id: Id = Field(description="The visit or bus stop.")
    outcome: Outcome = Field(
        description="arrived (serving now), done, not_home, refused, unreachable or skipped (still to do)."
    )
    at: TimeOfDay = Field(description="When it happened (the phone's clock), time of the plan's day.")
    arrival: TimeOfDay | None = None
    departure: TimeOfDay | None = None
    people_sampled: NonNegativeInt | None = Field(
        default=None, le=1_000_000, description="With done: people swabbed (a bus stop: people actually sampled)."
    )
    tubes_used: NonNegativeInt | None = Field(default=None, le=100_000)
    note: str | None = Field(default=None, max_length=2000, description="Personal data: never logged.")
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Resubmitting with the same key records the entry once (the Idempotency-Key header also works).",
    )

    @model_validator(mode="after")
    def _done_counts_people(self) -> EventIn:
        if self.outcome is Outcome.DONE and self.people_sampled is None:
            raise ValueError("a done outcome needs people_sampled (0 if nobody could be swabbed)")
        if self.outcome is not Outcome.DONE and (self.people_sampled or self.tubes_used):
            raise ValueError(f"people_sampled and tubes_used go with done, not {self.outcome.value}")
        return self


class EventOut(BaseModel):
    id: str
    plan_id: str
    version_id: str
    vehicle_id: str | None
    step_id: str | None
    outcome: str
    payload: dict[str, Any]
    actor: str
    recorded_at: datetime
    idempotency_key: str | None = None


class EventList(BaseModel):
    data: list[EventOut]
    count: int


# -- progress ----------------------------------------------------------------------------------------


class NextStepOut(BaseModel):
    id: str
    planned_start_s: float | None = None
    planned_start: str | None = None


class VehicleProgressOut(BaseModel):
    vehicle_id: str
    done: int
    remaining: int = Field(description="Steps of its current route with no outcome yet (in progress included).")
    late: int = Field(description="Remaining steps whose planned start is already past.")
    behind_s: int = Field(description="How far behind its plan the vehicle is (s).")
    outcomes: dict[str, int]
    in_progress: str | None = None
    people_sampled: int
    people_expected: int
    next_step: NextStepOut | None = None


class NotSampledOut(BaseModel):
    id: str
    kind: Literal["visit", "stop"]
    vehicle_id: str | None
    people: int | None = None
    priority: str | int | None = None
    address: str | None = None
    notes: str | None = None
    contact: str | None = None
    last_outcome: str | None = None
    last_at_s: int | None = None
    attempts: int = 0
    planned_start_s: float | None = None
    unassigned_reason: str | None = None


class PlanProgressOut(BaseModel):
    plan_id: str = Field(description="The plan's first version: its ledger spans every version.")
    current_version: str | None
    version: int | None
    at_s: int
    at: str
    vehicles: list[VehicleProgressOut]
    people_sampled: int
    people_expected: int
    tasks: int
    done: int
    outstanding: int
    not_sampled: list[NotSampledOut]


# -- re-planning -------------------------------------------------------------------------------------


class ReplanIn(_In):
    """What has changed since the current version; the answer is the next version, solved in the background."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"now": "11:00", "retry_not_home": True, "cancelled": ["v-7"],
         "new_visits": [{"id": "urgent-1", "location": [24.9390, 60.1702], "people": 1, "priority": "urgent"}],
         "dropped_vehicles": ["team-3"], "options": {"time_limit_s": 5}},
    ]})

    now: TimeOfDay = Field(description="The time of the plan's day the rest of the day starts from.")
    positions: dict[Id, LonLat] = Field(
        default_factory=dict, description="Vehicle id -> where it is now (GPS), when known."
    )
    new_visits: list[VisitIn] = Field(default_factory=list)
    cancelled: list[Id] = Field(default_factory=list, description="Visits or stops no longer wanted.")
    dropped_vehicles: list[Id] = Field(default_factory=list)
    joined_vehicles: list[VehicleIn] = Field(default_factory=list)
    retry_not_home: bool | list[Id] = Field(
        default=False,
        description="Try not_home visits again later today: true for all, or their ids. A visit left out "
        "of an earlier re-plan is brought back from the version that had it.",
    )
    retry_after_s: NonNegativeInt = Field(default=3600, le=24 * 3600)
    reassignment_cost: float = Field(
        default=900.0, ge=0, le=MAX_AMOUNT,
        description="Cost (default objective: seconds of driving) of moving a visit to another vehicle.",
    )
    matrices: dict[Profile, MatrixIn] | None = Field(
        default=None,
        description="For plans with caller-supplied matrices: over the current version's sites, then "
        "the not_home visits brought back from earlier versions (in retry_not_home order), then the new "
        "visits, then the positions (in the order given).",
    )
    options: OptionsIn = Field(default_factory=OptionsIn)


class ReplanOut(BaseModel):
    id: str
    status: str
    url: str
    version: int
    parent_id: str
    kept: dict[str, list[str]] = Field(description="Per vehicle: steps done or in progress, which stay fixed.")
    retried: list[str]
    not_retried: list[str] = Field(description="not_home visits whose windows close before a retry could start.")


class VersionOut(BaseModel):
    id: str
    version: int
    parent_id: str | None
    status: str
    url: str
    created_at: datetime
    summary: dict[str, Any] | None = None


class VersionList(BaseModel):
    data: list[VersionOut]
    count: int


class CompareOut(BaseModel):
    from_id: str
    to_id: str
    from_version: int
    to_version: int
    compared: int = Field(description="Visits and stops routed in both versions.")
    moved_fraction: float = Field(description="Of those, the fraction on another vehicle now.")
    moved: list[dict[str, Any]]
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]] = Field(description="With their ledger outcome (usually done since).")
    eta_changes: list[dict[str, Any]]


class CarryOverOut(BaseModel):
    plan_id: str
    request: dict[str, Any] = Field(description="A plan request (POST /v1/plans) for the visits not sampled.")
    history: dict[str, list[dict[str, Any]]] = Field(description="Per visit, its outcomes today.")
    warnings: list[str]


# -- plan mode ---------------------------------------------------------------------------------------


class EvaluateIn(_In):
    """A fixed order of steps per vehicle, checked against a problem (given, or a stored plan's)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"plan_id": "5f0c6b8e2d1a4c3b9e7f001122334455", "routes": {"team-1": ["v-2", "lunch", "v-1"]}},
    ]})

    plan_id: str | None = Field(default=None, description="Check against this plan's problem...")
    problem: PlanRequest | None = Field(default=None, description="...or against this one.")
    routes: dict[Id, list[Id]] = Field(description="Vehicle id -> visit, stop and break ids in order.")

    @model_validator(mode="after")
    def _one_problem(self) -> EvaluateIn:
        if (self.plan_id is None) == (self.problem is None):
            raise ValueError("give either `plan_id` or `problem`")
        return self


class EvaluateOut(BaseModel):
    feasible: bool
    cost: float
    missing: list[str] = Field(description="Visits (and stops) in no route.")
    plan: PlanDocument = Field(description="ETAs, waits and loads per step; `violations` lists every broken rule.")
