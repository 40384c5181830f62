"""The plan request: one day's problem, as it travels on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from routing.model import DEFAULT_MAX_SAMPLE_AGE_S, HORIZON_S
from service.schemas.buses_in import AreaIn, LabIn, StopIn
from service.schemas.fields import Profile, _In
from service.schemas.matrix import MatrixIn
from service.schemas.problem_in import DepotIn, ObjectiveIn, OptionsIn, VehicleIn, VisitIn

EXAMPLE_REQUEST: dict[str, Any] = {
    "network": "helsinki",
    "depots": [{"id": "station", "location": [24.9414, 60.1710]}],
    "vehicles": [
        {
            "id": "team-1",
            "kind": "team",
            "start_depot": "station",
            "shift": {"start": "08:00", "end": "16:00"},
            "capacity": {"tubes": 40},
            "profile": "drive",
            "breaks": [{"id": "lunch", "start": "11:30", "end": "13:00", "duration_s": 1800}],
        }
    ],
    "visits": [
        {
            "id": "v-1",
            "location": [24.9355, 60.1699],
            "people": 2,
            "priority": "quarantine",
            "time_windows": [{"start": "09:00", "end": "11:00"}],
            "address": "Mannerheimintie 5 A 12",
        },
        {"id": "v-2", "location": [24.9450, 60.1675], "people": 3, "priority": "vulnerable"},
    ],
    "options": {"time_limit_s": 5, "seed": 0, "engine": "auto"},
}


class PlanRequest(_In):
    """One day's problem: depots, the fleet, and the visits to make."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    name: str | None = Field(default=None, max_length=200, description="A label for listings.")
    network: str | None = Field(
        default=None,
        description="Road network to route on (see GET /v1/networks); null: the server's default. "
        "With `matrices` it only draws the routes' road geometry (a re-planned version's request).",
    )
    matrices: dict[Profile, MatrixIn] | None = Field(
        default=None,
        description="Caller-supplied travel matrices per profile, over depots then visits. "
        "null entries mean no path.",
    )
    depots: list[DepotIn] = Field(min_length=1)
    vehicles: list[VehicleIn] = Field(min_length=1)
    visits: list[VisitIn] = Field(default_factory=list)
    stops: list[StopIn] = Field(default_factory=list, description="Candidate bus stops.")
    areas: list[AreaIn] = Field(
        default_factory=list, description="Demand areas: Doorstep chooses stops to cover them."
    )
    labs: list[LabIn] = Field(default_factory=list, description="Labs and sample transfer points.")
    max_sample_age_s: int = Field(
        default=DEFAULT_MAX_SAMPLE_AGE_S, gt=0, le=HORIZON_S, description="Samples must reach a lab within this."
    )
    options: OptionsIn = Field(default_factory=OptionsIn)
    objective: ObjectiveIn = Field(default_factory=ObjectiveIn)

    @property
    def sites(self) -> list[DepotIn | VisitIn | StopIn | LabIn]:
        """In matrix order: depots, visits, bus stops, labs."""
        return [*self.depots, *self.visits, *self.stops, *self.labs]

    def site_field(self, site_id: str) -> tuple[str, int] | None:
        """The request list and index of the site ``site_id`` (e.g. ``("stops", 2)``), if any."""
        for kind in ("depots", "visits", "stops", "labs"):
            for i, site in enumerate(getattr(self, kind)):
                if site.id == site_id:
                    return kind, i
        return None

    @property
    def profiles(self) -> list[str]:
        return sorted({v.profile for v in self.vehicles})

