"""Response models of the API around the plan document: plans and their solves, routes, networks, health."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.document import PlanDocument, RouteOut


class Status(StrEnum):
    QUEUED = "queued"
    SOLVING = "solving"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Status.DONE, Status.FAILED, Status.CANCELLED)


class ProgressOut(BaseModel):
    elapsed_s: float
    cost: float | None = None
    vehicles: int | None = None
    assigned: int | None = None
    engine: str | None = None


class ErrorOut(BaseModel):
    type: str = Field(description="input_error, network_error, solver_error, timeout, interrupted or internal.")
    msg: str
    loc: list[str | int] | None = None


_EXAMPLE_STEP: dict[str, Any] = {
    "kind": "visit",
    "id": "v-1",
    "location": [24.9355, 60.1699],
    "arrival_s": 32400,
    "arrival": "09:00",
    "wait_s": 0,
    "start_s": 32400,
    "start": "09:00",
    "service_s": 420,
    "departure_s": 32820,
    "departure": "09:07",
    "load": {"tubes": 2},
    "distance_m": 1240,
    "travel_s": 180,
    "people": 2,
    "priority": "quarantine",
    "address": "Mannerheimintie 5 A 12",
    "notes": None,
    "contact": None,
    "time_windows": [{"start_s": 32400, "start": "09:00", "end_s": 39600, "end": "11:00"}],
}

EXAMPLE_PLAN: dict[str, Any] = {
    "id": "5f0c6b8e2d1a4c3b9e7f001122334455",
    "name": "Kallio, Tuesday",
    "status": "done",
    "url": "/v1/plans/5f0c6b8e2d1a4c3b9e7f001122334455",
    "created_at": "2026-11-17T07:00:00Z",
    "started_at": "2026-11-17T07:00:01Z",
    "finished_at": "2026-11-17T07:00:06Z",
    "attempts": 1,
    "cancel_requested": False,
    "progress": {"elapsed_s": 5.0, "cost": 5230.0, "vehicles": 1, "assigned": 2, "engine": "pyvrp"},
    "plan": {
        "summary": {"cost": 5230, "vehicles_used": 1, "visits_assigned": 2, "visits_unassigned": 0},
        "routes": [
            {
                "vehicle_id": "team-1",
                "kind": "team",
                "profile": "drive",
                "distance_m": 3100,
                "duration_s": 2700,
                "travel_s": 480,
                "wait_s": 0,
                "service_s": 900,
                "cost": 5230,
                "start": "08:53",
                "end": "09:38",
                "geometry": None,
                "steps": [_EXAMPLE_STEP],
            }
        ],
        "unassigned": [],
        "violations": [],
        "stats": {},
    },
    "error": None,
}


class PlanCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c6b8e2d1a4c3b9e7f001122334455",
                    "status": "queued",
                    "url": "/v1/plans/5f0c6b8e2d1a4c3b9e7f001122334455",
                }
            ]
        }
    )

    id: str
    status: Status
    url: str


class PlanOut(BaseModel):
    """A plan and its solve: status, progress while solving, the plan when there is one."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_PLAN]})

    id: str
    name: str | None = None
    status: Status
    url: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    cancel_requested: bool = False
    progress: ProgressOut | None = None
    plan: PlanDocument | None = Field(
        default=None, description="When done; when cancelled, the best plan found before (if any)."
    )
    error: ErrorOut | None = None
    version: int = Field(default=1, description="Its number among the plan's versions (1: as first posted).")
    publication: str = Field(
        default="published",
        description="`published`: the crews' once it has routes; `draft`: a re-plan or hand edit waiting for "
        "`POST /v1/plans/{id}/publish`; `discarded`.",
    )


class PlanSummaryOut(BaseModel):
    id: str
    name: str | None = None
    status: Status
    url: str
    created_at: datetime
    finished_at: datetime | None = None
    visits: int
    vehicles: int
    summary: dict[str, Any] | None = None


class PlanList(BaseModel):
    """One page of plans, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "id": "5f0c6b8e2d1a4c3b9e7f001122334455",
                            "name": "Kallio, Tuesday",
                            "status": "done",
                            "url": "/v1/plans/5f0c6b8e2d1a4c3b9e7f001122334455",
                            "created_at": "2026-11-17T07:00:00Z",
                            "finished_at": "2026-11-17T07:00:06Z",
                            "visits": 2,
                            "vehicles": 1,
                            "summary": {"cost": 5230, "vehicles_used": 1, "visits_assigned": 2},
                        }
                    ],
                    "count": 1,
                    "offset": 0,
                    "limit": 50,
                }
            ]
        }
    )

    data: list[PlanSummaryOut]
    count: int = Field(description="Plans matching, over all pages.")
    offset: int
    limit: int


class _PlanRef(BaseModel):
    plan_id: str


class RouteDetail(RouteOut, _PlanRef):
    """One crew's ordered stop list."""

    superseded_by: str | None = Field(
        default=None,
        description="The newest version of this plan when this one has been re-planned: load that route instead.",
    )

    # A route of the plan document with its plan's id; ``plan_id`` comes first (pydantic gathers
    # fields base-first along the MRO: ``_PlanRef``'s, then ``RouteOut``'s).
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"plan_id": EXAMPLE_PLAN["id"], **EXAMPLE_PLAN["plan"]["routes"][0]}]}
    )


class NetworkOut(BaseModel):
    name: str
    profiles: list[str]
    bounds: tuple[float, float, float, float] | None = Field(
        default=None, description="[min_lon, min_lat, max_lon, max_lat]"
    )
    area: dict[str, Any] | None = Field(default=None, description="GeoJSON polygon of the area served.")
    report: dict[str, Any] = Field(default_factory=dict)
    default: bool = False


class NetworkList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "name": "helsinki",
                            "profiles": ["drive", "walk"],
                            "bounds": [24.92, 60.16, 24.96, 60.18],
                            "area": None,
                            "report": {"drive": {"nodes": 160}},
                            "default": True,
                        }
                    ],
                    "count": 1,
                }
            ]
        }
    )

    data: list[NetworkOut]
    count: int


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok", "checks": {"database": "ok"}}]})

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
