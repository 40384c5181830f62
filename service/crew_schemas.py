"""Wire models of crew links and the crew's day (conventions of :mod:`service.schemas`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.auth import KeyInfo
from service.schemas import Id, _In

# -- crew links ---------------------------------------------------------------------------------------


class CrewLinkIn(_In):
    """A crew link for one vehicle of the plan."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"vehicle_id": "team-1", "label": "team-1's phone"},
        {"vehicle_id": "bus-3", "day": "2026-12-03"},
    ]})

    vehicle_id: Id
    day: date | None = Field(
        default=None,
        description="The plan's day (default: today, server's local date): the link expires at its end, "
        "or at the end of the plan's latest night shift.",
    )
    label: str | None = Field(default=None, max_length=200, description="Who holds it, for listings.")


class CrewLinkOut(BaseModel):
    """A crew link, without its secret."""

    prefix: str = Field(description="Revoke with DELETE .../crew-links/{prefix} (or `doorstep keys revoke`).")
    plan_id: str = Field(description="The plan's first version: the link reaches every version.")
    vehicle_id: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: KeyInfo) -> CrewLinkOut:
        return cls(prefix=info.prefix, plan_id=info.plan_id or "", vehicle_id=info.vehicle_id or "",
                   label=info.label, created_at=info.created_at, expires_at=info.expires_at,
                   revoked_at=info.revoked_at)


class CrewLinkCreated(CrewLinkOut):
    """A new crew link: ``url`` and the QR codes hold the secret and are shown only now."""

    url: str = Field(description="Open on the crew's phone. The key is in the fragment (after #): "
                     "browsers send it to no server log and in no Referer.")
    qr_svg: str = Field(description="The URL as a QR code, an SVG document.")
    qr_png: str = Field(description="The URL as a QR code, a PNG data URI.")


class CrewLinkList(BaseModel):
    data: list[CrewLinkOut]
    count: int


# -- the crew's day -----------------------------------------------------------------------------------


class CrewStepOut(BaseModel):
    """A step of the crew's list, with its outcome so far (visits and bus stops)."""

    kind: str
    id: str
    location: tuple[float, float] | None = None
    arrival_s: float | None = None
    arrival: str | None = None
    start_s: float | None = None
    start: str | None = None
    departure_s: float | None = None
    departure: str | None = None
    service_s: float | None = None
    wait_s: float | None = None
    people: int | None = None
    priority: str | None = None
    address: str | None = None
    notes: str | None = None
    contact: str | None = None
    time_windows: list[dict[str, Any]] | None = None
    dwell_s: float | None = Field(default=None, description="Bus stop: time parked (setup + sampling).")
    areas: list[dict[str, Any]] | None = None
    needs: dict[str, int] = Field(default_factory=dict, description="Tubes, kits... the step takes (planned).")
    outcome: str | None = None
    at_s: int | None = None
    arrival_recorded_s: int | None = None
    departure_recorded_s: int | None = None
    people_sampled: int | None = None
    tubes_used: int | None = None
    note: str | None = None


class CrewChangesOut(BaseModel):
    """What the newest re-plan changed for this vehicle."""

    from_version: int
    to_version: int
    added: list[str] = Field(description="Visits and stops that are this vehicle's now.")
    removed: list[str] = Field(description="No longer this vehicle's (cancelled or given to another).")
    order_changed: bool
    eta_changes: list[dict[str, Any]] = Field(description="Planned start times that moved, of the stops that stay.")
    addresses: dict[str, str | None] = Field(
        default_factory=dict, description="The address of every stop named here (the removed ones are in no list).")


class CrewProgressOut(BaseModel):
    done: int
    remaining: int
    late: int
    behind_s: int
    people_sampled: int
    people_expected: int


class CrewDayOut(BaseModel):
    """The crew's day: its current route, what it recorded, what changed, its progress."""

    plan_id: str = Field(description="Record outcomes with POST /v1/plans/{plan_id}/events.")
    plan_name: str | None
    version_id: str | None = Field(description="The version whose route this is (None: not solved yet).")
    version: int | None
    status: str
    vehicle_id: str
    vehicle_kind: str
    start: str | None
    end: str | None
    expires_at: datetime | None
    steps: list[CrewStepOut] = Field(description="The current route in order: visits, bus stops, labs, breaks.")
    recorded: list[CrewStepOut] = Field(description="Recorded steps the current version no longer routes.")
    changes: CrewChangesOut | None
    progress: CrewProgressOut
    now_s: int = Field(description="The server's time of day.")
    outcomes: list[str]
