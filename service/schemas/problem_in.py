"""Request models of the problem proper: depots, vehicles (shifts, breaks), visits, options, objective."""

from __future__ import annotations

from pydantic import Field, NonNegativeInt

from routing.model import HORIZON_S, Priority, VehicleKind, swab_tubes
from service.schemas.fields import (
    MAX_AMOUNT,
    MAX_COST_PER_UNIT,
    MAX_PRIORITY_FACTOR,
    Amount,
    District,
    Engine,
    Id,
    LonLat,
    PriorityIn,
    Profile,
    _In,
)
from service.schemas.times import TimeOfDay, TimeWindowIn


class ShiftIn(TimeWindowIn):
    """When the crew works: leaves its depot no earlier than ``start``, is back by ``end``."""


class BreakIn(_In):
    id: Id
    start: TimeOfDay = Field(description="Earliest start of the break.")
    end: TimeOfDay = Field(description="Latest start of the break.")
    duration_s: int = Field(gt=0, le=HORIZON_S)


class DepotIn(_In):
    id: Id
    district: District = None
    location: LonLat


class VehicleIn(_In):
    id: Id
    district: District = None
    kind: VehicleKind = VehicleKind.TEAM
    start_depot: Id
    end_depot: Id | None = Field(
        default=None,
        description="Where the route ends; null for an open end (the last visit). Omitted: the start depot.",
    )
    shift: ShiftIn
    capacity: dict[str, Amount] = Field(
        default_factory=dict, description='Per dimension, e.g. {"tubes": 40}. Unlisted: unlimited.'
    )
    skills: list[Id] = Field(default_factory=list, max_length=64)
    profile: Profile = "drive"
    breaks: list[BreakIn] = Field(default_factory=list, max_length=16)
    max_duration_s: int | None = Field(default=None, gt=0, le=HORIZON_S)
    fixed_cost: Amount = 0
    speed_factor: float = Field(default=1.0, ge=0.1, le=10)  # 1e-10 made travel times overflow int64
    lanes: int = Field(default=2, ge=1, le=50, description="Sampling queues a bus runs at a stop.")
    seconds_per_person: NonNegativeInt = Field(
        default=20, le=3600, description="Swabbing time per person in one lane at a bus stop."
    )

    @property
    def resolved_end_depot(self) -> str | None:
        """``end_depot`` as given; the start depot when the field was left out."""
        return self.end_depot if "end_depot" in self.model_fields_set else self.start_depot


class VisitIn(_In):
    id: Id
    district: District = None
    location: LonLat
    people: NonNegativeInt = Field(default=1, le=100_000)
    setup_s: NonNegativeInt = Field(default=300, le=HORIZON_S, description="Questions and temperature at the door.")
    per_person_s: NonNegativeInt = Field(default=60, le=3600, description="Swabbing, per person.")
    time_windows: list[TimeWindowIn] = Field(
        default_factory=list, max_length=16, description="Empty: any time in the crew's shift."
    )
    priority: PriorityIn = Priority.ROUTINE
    skills: list[Id] = Field(default_factory=list, max_length=64)
    demand: dict[str, Amount] | None = Field(
        default=None,
        description='Per capacity dimension. Default {"tubes": swab tubes for `people`} '
        "(one per person unpooled, one per 10 pooled).",
    )
    pooled: bool | None = Field(
        default=None, description="10-in-1 pooled swabs. Default: true unless the priority is quarantine."
    )
    required: bool = True
    penalty: Amount | None = Field(
        default=None, description="Cost of not making an optional visit (required=false)."
    )
    notes: str | None = Field(default=None, max_length=2000, description="Personal data: never logged.")
    contact: str | None = Field(default=None, max_length=200, description="Personal data: never logged.")
    preferred_vehicle: Id | None = Field(
        default=None,
        description="The vehicle it had in the previous version (re-planning): moving it elsewhere costs "
        "`objective.reassignment_cost`.",
    )
    address: str | None = Field(default=None, max_length=500)

    @property
    def resolved_demand(self) -> dict[str, int]:
        if self.demand is not None:
            return dict(self.demand)
        pooled = self.pooled if self.pooled is not None else self.priority != Priority.QUARANTINE
        return {"tubes": swab_tubes(self.people, pooled=pooled)}



class OptionsIn(_In):
    time_limit_s: float | None = Field(
        default=None, gt=0, description="Solver time budget (s). Default and maximum are set by the server."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    engine: Engine = "auto"
    full_budget: bool = Field(
        default=False,
        description="Search for the whole time limit; by default a search that has converged stops early "
        "(a small problem answers at once).",
    )
    initial_routes: dict[str, list[str]] | None = Field(
        default=None, description="Warm start: vehicle id -> visit (and break) ids, e.g. a previous version's order."
    )


class ObjectiveIn(_In):
    duration_cost_per_s: float = Field(default=1.0, ge=0, le=MAX_COST_PER_UNIT)
    distance_cost_per_m: float = Field(default=0.0, ge=0, le=MAX_COST_PER_UNIT)
    unassigned_penalty: Amount = 10_000_000
    priority_factor: float = Field(default=4.0, ge=1, le=MAX_PRIORITY_FACTOR)
    reassignment_cost: float = Field(
        default=0.0, ge=0, le=MAX_AMOUNT,
        description="Cost of serving a visit with another vehicle than its `preferred_vehicle`."
    )
    makespan_cost_per_s: float = Field(
        default=0.0, ge=0, le=MAX_COST_PER_UNIT,
        description="Cost per second of the day's makespan (first departure to last return of the vehicles "
        "used): above 0 it spreads the work over the crews so everyone is home sooner, at some extra travel.",
    )

