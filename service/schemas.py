"""Wire models of the HTTP API, and the conversions at its edge.

Conventions (declared once, as VROOM's API document does; repeated in the OpenAPI description):

- locations are ``[lon, lat]`` in WGS84 degrees;
- durations are seconds, distances metres; time windows are inclusive ``[start, end]``;
- a time is whole seconds from midnight of the plan's day, or a ``"HH:MM"`` / ``"HH:MM:SS"``
  string; hours may pass 24 for shifts that run past midnight (``"29:00"`` is 05:00 next day).
  Output gives both: ``arrival_s`` (seconds) and ``arrival`` (``"HH:MM"``, hours past 24 kept);
- callers own every id; output refers back by id, never by position.

What is checked where: shape and range here (pydantic: every bad field answers 422 with its
path); consistency between objects in :class:`routing.model.Problem` (its
:class:`~routing.errors.ProblemError` carries ``path``; :func:`to_problem` prefixes it so it
names the request field). A visit nobody can serve is not an input error: it comes back in
``unassigned`` with a reason.

:func:`plan_document` builds the one JSON document a solved plan is shown as: the API's
``GET /v1/plans/{id}`` ``plan``, the exports (``service.exports``) and the CLI all read it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from routing.errors import ProblemError
from routing.model import (
    DEFAULT_MAX_SAMPLE_AGE_S,
    HORIZON_S,
    Break,
    BusStop,
    DemandArea,
    Depot,
    Lab,
    Objective,
    Priority,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VehicleKind,
    Visit,
    swab_tubes,
)
from routing.plan import Plan, Route, StepKind

CONVENTIONS = """\
Conventions: locations are `[lon, lat]` (WGS84 degrees); durations are seconds and distances
metres; time windows are inclusive `[start, end]`. A time is whole seconds from midnight of the
plan's day or an `"HH:MM"` / `"HH:MM:SS"` string; hours may pass 24 for shifts past midnight
(`"29:00"` is 05:00 the next day). Output gives every time twice: `*_s` in seconds and an
`"HH:MM"` string. Callers own every id; output refers back by id. Matrices are indexed by site:
the depots in request order, then the visits, then the bus stops, then the labs (each in request order).

Errors: bad input answers `422` with `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`
naming the field; a body over the size limit `413`; a road network that cannot answer `503`;
anything else `500` with a `request_id` to quote (details are logged, never sent).
A visit that cannot be served is not an error: it is listed in the plan's `unassigned` with a reason.
"""

Profile = Literal["drive", "walk"]
Engine = Literal["auto", "ortools", "pyvrp"]

Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    Field(description="Caller-owned id, unique among objects of its kind."),
]


# -- times -----------------------------------------------------------------------------------------

_CLOCK_RE = re.compile(r"^\s*(\d{1,2}):([0-5]\d)(?::([0-5]\d))?\s*$")


def parse_time(value: Any) -> int:
    """Seconds from midnight from an integer or an ``"HH:MM[:SS]"`` string (hours may pass 24)."""
    if isinstance(value, bool):
        raise ValueError(f"a time must be seconds or an HH:MM string, got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str):
        match = _CLOCK_RE.match(value)
        if match is None:
            raise ValueError(
                f'a time must be whole seconds from midnight or "HH:MM" / "HH:MM:SS", got "{value}"'
            )
        hours, minutes, secs = match.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)
    else:
        raise ValueError(
            f'a time must be whole seconds from midnight or "HH:MM" / "HH:MM:SS", got {value!r}'
        )
    if not 0 <= seconds <= HORIZON_S:
        raise ValueError(f"a time must lie between 00:00 and 72:00 (0 and {HORIZON_S} s), got {seconds} s")
    return seconds


def clock(seconds: float) -> str:
    """``"HH:MM"`` for seconds from midnight; hours pass 24 the next day (``"29:00"``)."""
    total = math.floor(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}"


TimeOfDay = Annotated[
    int,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": HORIZON_S},
                {"type": "string", "pattern": r"^\d{1,2}:[0-5]\d(:[0-5]\d)?$"},
            ],
            "description": 'Seconds from midnight, or "HH:MM" / "HH:MM:SS" (hours may pass 24).',
            "examples": ["08:00", 28800, "29:00"],
        }
    ),
]


# -- locations ---------------------------------------------------------------------------------------


def _check_lon_lat(value: tuple[float, float]) -> tuple[float, float]:
    lon, lat = value
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"location must be finite [lon, lat], got [{lon}, {lat}]")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be within [-180, 180], got {lon} (locations are [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(
            f"latitude must be within [-90, 90], got {lat} (locations are [lon, lat]: are they swapped?)"
        )
    return (lon, lat)


LonLat = Annotated[
    tuple[float, float],
    AfterValidator(_check_lon_lat),
    Field(description="[lon, lat] in WGS84 degrees.", examples=[[24.9384, 60.1699]]),
]


# -- priorities --------------------------------------------------------------------------------------


def _parse_priority(value: Any) -> Priority:
    if isinstance(value, Priority):
        return value
    if isinstance(value, str) and value.strip().upper() in Priority.__members__:
        return Priority[value.strip().upper()]
    if isinstance(value, int) and not isinstance(value, bool) and value in {p.value for p in Priority}:
        return Priority(value)
    names = ", ".join(p.name.lower() for p in Priority)
    raise ValueError(f"priority must be one of {names} (or 0-3), got {value!r}")


PriorityIn = Annotated[
    Priority,
    BeforeValidator(_parse_priority),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": [p.name.lower() for p in Priority]},
                {"type": "integer", "minimum": 0, "maximum": 3},
            ],
            "description": "routine (0), vulnerable (1), quarantine (2), urgent (3); higher is served first.",
            "default": "routine",
        }
    ),
]


# -- request -----------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TimeWindowIn(_In):
    """An inclusive window ``[start, end]``."""

    start: TimeOfDay
    end: TimeOfDay


class ShiftIn(TimeWindowIn):
    """When the crew works: leaves its depot no earlier than ``start``, is back by ``end``."""


class BreakIn(_In):
    id: Id
    start: TimeOfDay = Field(description="Earliest start of the break.")
    end: TimeOfDay = Field(description="Latest start of the break.")
    duration_s: int = Field(gt=0, le=HORIZON_S)


class DepotIn(_In):
    id: Id
    location: LonLat


class VehicleIn(_In):
    id: Id
    kind: VehicleKind = VehicleKind.TEAM
    start_depot: Id
    end_depot: Id | None = Field(
        default=None,
        description="Where the route ends; null for an open end (the last visit). Omitted: the start depot.",
    )
    shift: ShiftIn
    capacity: dict[str, NonNegativeInt] = Field(
        default_factory=dict, description='Per dimension, e.g. {"tubes": 40}. Unlisted: unlimited.'
    )
    skills: list[Id] = Field(default_factory=list, max_length=64)
    profile: Profile = "drive"
    breaks: list[BreakIn] = Field(default_factory=list, max_length=16)
    max_duration_s: int | None = Field(default=None, gt=0)
    fixed_cost: NonNegativeInt = 0
    speed_factor: float = Field(default=1.0, gt=0, le=10)
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
    location: LonLat
    people: NonNegativeInt = Field(default=1, le=100_000)
    setup_s: NonNegativeInt = Field(default=300, description="Questions and temperature at the door.")
    per_person_s: NonNegativeInt = Field(default=60, description="Swabbing, per person.")
    time_windows: list[TimeWindowIn] = Field(
        default_factory=list, max_length=16, description="Empty: any time in the crew's shift."
    )
    priority: PriorityIn = Priority.ROUTINE
    skills: list[Id] = Field(default_factory=list, max_length=64)
    demand: dict[str, NonNegativeInt] | None = Field(
        default=None,
        description='Per capacity dimension. Default {"tubes": swab tubes for `people`} '
        "(one per person unpooled, one per 10 pooled).",
    )
    pooled: bool | None = Field(
        default=None, description="10-in-1 pooled swabs. Default: true unless the priority is quarantine."
    )
    required: bool = True
    penalty: NonNegativeInt | None = Field(
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


class StopIn(_In):
    """A candidate bus stop: where a bus may park and sample the people who walk to it."""

    id: Id
    location: LonLat
    people: NonNegativeInt | None = Field(
        default=None,
        le=1_000_000,
        description="People expected. Omitted: derived from the demand areas that walk to it.",
    )
    time_windows: list[TimeWindowIn] = Field(
        default_factory=list, max_length=16, description="e.g. a school's green channel. Empty: any time."
    )
    required: bool = Field(default=False, description="Must be served; otherwise Doorstep chooses.")
    group: Id | None = Field(default=None, description="Alternatives group: at most one stop of a group is used.")
    max_dwell_s: int | None = Field(default=None, gt=0, le=HORIZON_S, description="Longest a bus may stay.")
    setup_s: NonNegativeInt = Field(default=600, le=HORIZON_S, description="Parking and setting up.")
    demand: dict[str, NonNegativeInt] | None = Field(
        default=None,
        description='Per capacity dimension. Default with `people`: {"tubes": one per 10 people (pooled)}; '
        "without: derived with the people.",
    )
    notes: str | None = Field(default=None, max_length=2000)
    address: str | None = Field(default=None, max_length=500)

    @property
    def resolved_demand(self) -> dict[str, int]:
        if self.demand is not None:
            return dict(self.demand)
        return {} if self.people is None else {"tubes": swab_tubes(self.people, pooled=True)}


def _polygon_centroid(ring: list[tuple[float, float]]) -> tuple[float, float]:
    from shapely.geometry import Polygon

    polygon = Polygon(ring)
    if polygon.is_empty or polygon.area <= 0:
        raise ValueError("polygon encloses no area: give at least 3 distinct [lon, lat] corners")
    centroid = polygon.centroid
    return (float(centroid.x), float(centroid.y))


class AreaIn(_In):
    """Where people live or work: a point or a polygon (its centroid is where they walk from)."""

    id: Id
    location: LonLat | None = Field(
        default=None, description="Where its people walk from. Omitted: the polygon's centroid."
    )
    polygon: list[LonLat] | None = Field(
        default=None, min_length=3, max_length=10_000, description="Outline, [[lon, lat], ...]; drawn on maps."
    )
    population: NonNegativeInt = Field(le=10_000_000)
    walk_limit_m: float = Field(default=400.0, gt=0, le=20_000, description="Longest walk to a bus stop (m).")

    @model_validator(mode="after")
    def _location_or_polygon(self) -> AreaIn:
        if self.location is None and self.polygon is None:
            raise ValueError("give `location` or `polygon` (its centroid is used)")
        if self.polygon is not None:
            _polygon_centroid(self.polygon)  # rejects a polygon without area
        return self

    @property
    def resolved_location(self) -> tuple[float, float]:
        if self.location is not None:
            return self.location
        assert self.polygon is not None  # checked above
        return _polygon_centroid(self.polygon)


class LabIn(_In):
    """A laboratory or sample transfer point; vehicles drop samples there, as often as needed."""

    id: Id
    location: LonLat
    opening: list[TimeWindowIn] = Field(default_factory=list, max_length=16, description="Empty: always open.")
    handover_s: NonNegativeInt = Field(default=300, le=HORIZON_S)


def _finite_or_none(value: float | None) -> float | None:
    if value is not None and (math.isnan(value) or value < 0):
        raise ValueError(f"matrix entries must be >= 0 (null: no path), got {value}")
    return value


MatrixEntry = Annotated[float | None, AfterValidator(_finite_or_none)]


class MatrixIn(_In):
    """A square matrix per quantity, ``[from][to]``, over the sites: depots, visits, stops, labs."""

    durations_s: list[list[MatrixEntry]]
    distances_m: list[list[MatrixEntry]]

    @model_validator(mode="after")
    def _square(self) -> MatrixIn:
        for name in ("durations_s", "distances_m"):
            rows: list[list[float | None]] = getattr(self, name)
            for i, row in enumerate(rows):
                if len(row) != len(rows):
                    raise ValueError(
                        f"{name} must be square: row {i} has {len(row)} entries, there are {len(rows)} rows"
                    )
        if len(self.durations_s) != len(self.distances_m):
            raise ValueError(
                f"durations_s ({len(self.durations_s)} rows) and distances_m "
                f"({len(self.distances_m)} rows) differ in size"
            )
        return self

    def to_travel_matrix(self) -> TravelMatrix:
        def array(rows: list[list[float | None]]) -> np.ndarray:
            return np.array([[math.inf if v is None else v for v in row] for row in rows], dtype=np.float64)

        n = len(self.durations_s)
        if n == 0:
            empty = np.zeros((0, 0))
            return TravelMatrix(empty, empty)
        return TravelMatrix(array(self.durations_s), array(self.distances_m))


class OptionsIn(_In):
    time_limit_s: float | None = Field(
        default=None, gt=0, description="Solver time budget (s). Default and maximum are set by the server."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    engine: Engine = "auto"
    initial_routes: dict[str, list[str]] | None = Field(
        default=None, description="Warm start: vehicle id -> visit (and break) ids, e.g. a previous version's order."
    )


class ObjectiveIn(_In):
    duration_cost_per_s: float = Field(default=1.0, ge=0)
    distance_cost_per_m: float = Field(default=0.0, ge=0)
    unassigned_penalty: NonNegativeInt = 10_000_000
    priority_factor: float = Field(default=4.0, ge=1)
    reassignment_cost: float = Field(
        default=0.0, ge=0, description="Cost of serving a visit with another vehicle than its `preferred_vehicle`."
    )


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
        description="Road network to route on (see GET /v1/networks). Null with `matrices`; "
        "null without `matrices`: the server's default network.",
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

    @model_validator(mode="after")
    def _network_or_matrices(self) -> PlanRequest:
        if self.matrices is not None and self.network is not None:
            raise ValueError("give either `network` or `matrices`, not both")
        return self

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


# -- to_problem --------------------------------------------------------------------------------------


def _prefixed(error: ProblemError, prefix: Sequence[str | int], where: str = "") -> ProblemError:
    message = str(error)
    if where and not message.startswith(where):
        message = f"{where}: {message}"
    return type(error)(message, path=(*prefix, *error.path))


def _window(window: TimeWindowIn, where: str, path: tuple[str | int, ...]) -> TimeWindow:
    try:
        return TimeWindow(window.start, window.end)
    except ProblemError as error:
        raise ProblemError(f"{where}: {error}", path=path) from None


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
    depots: list[Depot] = []
    for i, d in enumerate(request.depots):
        try:
            depots.append(Depot(d.id, d.location))
        except ProblemError as error:
            raise _prefixed(error, ("depots", i)) from None
    vehicles: list[Vehicle] = []
    for i, v in enumerate(request.vehicles):
        where = f'Vehicle "{v.id}"'
        try:
            vehicles.append(
                Vehicle(
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
            )
        except ProblemError as error:
            if error.path[:1] == ("vehicles",):
                raise
            raise _prefixed(error, ("vehicles", i), where) from None
    visits: list[Visit] = []
    for i, visit in enumerate(request.visits):
        where = f'Visit "{visit.id}"'
        try:
            visits.append(
                Visit(
                    id=visit.id,
                    location=visit.location,
                    people=visit.people,
                    setup_s=visit.setup_s,
                    per_person_s=visit.per_person_s,
                    time_windows=tuple(
                        _window(w, f"{where}: time window", ("visits", i, "time_windows", j))
                        for j, w in enumerate(visit.time_windows)
                    ),
                    priority=visit.priority,
                    skills=frozenset(visit.skills),
                    demand=visit.resolved_demand,
                    required=visit.required,
                    penalty=visit.penalty,
                    notes=visit.notes,
                    contact=visit.contact,
                    preferred_vehicle=visit.preferred_vehicle,
                )
            )
        except ProblemError as error:
            if error.path[:1] == ("visits",):
                raise
            raise _prefixed(error, ("visits", i), where) from None
    stops, areas, labs = _stops_areas_labs(request)
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


def _stops_areas_labs(request: PlanRequest) -> tuple[list[BusStop], list[DemandArea], list[Lab]]:
    stops: list[BusStop] = []
    for i, stop in enumerate(request.stops):
        where = f'Bus stop "{stop.id}"'
        try:
            stops.append(
                BusStop(
                    id=stop.id,
                    location=stop.location,
                    people=stop.people or 0,
                    time_windows=tuple(
                        _window(w, f"{where}: time window", ("stops", i, "time_windows", j))
                        for j, w in enumerate(stop.time_windows)
                    ),
                    required=stop.required,
                    group=stop.group,
                    max_dwell_s=stop.max_dwell_s,
                    setup_s=stop.setup_s,
                    demand=stop.resolved_demand,
                    notes=stop.notes,
                )
            )
        except ProblemError as error:
            if error.path[:1] == ("stops",):
                raise
            raise _prefixed(error, ("stops", i), where) from None
    areas: list[DemandArea] = []
    for i, area in enumerate(request.areas):
        try:
            areas.append(
                DemandArea(
                    id=area.id,
                    location=area.resolved_location,
                    population=area.population,
                    walk_limit_m=area.walk_limit_m,
                    polygon=None if area.polygon is None else tuple(area.polygon),
                )
            )
        except ProblemError as error:
            raise _prefixed(error, ("areas", i), f'Area "{area.id}"') from None
    labs: list[Lab] = []
    for i, lab in enumerate(request.labs):
        where = f'Lab "{lab.id}"'
        try:
            labs.append(
                Lab(
                    id=lab.id,
                    location=lab.location,
                    opening=tuple(
                        _window(w, f"{where}: opening", ("labs", i, "opening", j))
                        for j, w in enumerate(lab.opening)
                    ),
                    handover_s=lab.handover_s,
                )
            )
        except ProblemError as error:
            if error.path[:1] == ("labs",):
                raise
            raise _prefixed(error, ("labs", i), where) from None
    return stops, areas, labs


def error_loc(error: ProblemError) -> list[str | int]:
    """The 422 ``loc`` of a :class:`ProblemError` raised for a request body."""
    return ["body", *error.path]


# -- plan document -----------------------------------------------------------------------------------


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
    addresses: Mapping[str, str | None],
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
                address=addresses.get(visit.id),
                notes=visit.notes,
                contact=visit.contact,
                time_windows=[_window_out(w) for w in visit.time_windows],
            )
        elif step.kind is StepKind.STOP:
            stop = problem.task(step.id)
            tubes = int(step.load.get("tubes", 0)) - previous_tubes
            out.update(
                people=step.people,
                address=addresses.get(stop.id),
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
    *,
    addresses: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The JSON document of a plan, shared by the API, the exports and the CLI.

    ``routes`` lists the vehicles that are used (as VROOM does), each with its ordered steps and
    their schedule; ``geometries`` (vehicle id -> ``[[lon, lat], ...]``) gives each route's road
    line, else ``geometry`` is null. ``addresses`` (visit id -> address) come from the request:
    the routing model has no addresses. Visits' ``notes`` and ``contact`` are in the steps:
    the document is personal data and must never be logged.
    """
    geometries = geometries or {}
    addresses = addresses or {}
    summary = jsonable(plan.summary())
    for key in ("cost", "distance_m", "travel_s", "wait_s", "service_s", "solve_s", "max_sample_age_s"):
        if isinstance(summary.get(key), float):
            summary[key] = _num(summary[key])
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
    return {
        "summary": summary,
        "routes": [
            _route_document(problem, route, geometries.get(route.vehicle_id), addresses, catchments)
            for route in plan.used_routes
        ],
        "unassigned": unassigned,
        "coverage": coverage,
        "violations": [jsonable(v.to_dict()) for v in plan.violations],
        "stats": jsonable(plan.stats),
    }


def _coverage_document(problem: Problem, plan: Plan) -> list[dict[str, Any]]:
    """Per demand area: the stop serving it and the walk, or why none does; with the locations
    (the area's, its polygon, the stop's) that maps draw catchments from."""
    areas = {a.id: a for a in problem.areas}
    out: list[dict[str, Any]] = []
    for cover in plan.coverage:
        entry = jsonable(cover.to_dict())
        if isinstance(entry.get("walk_m"), float):
            entry["walk_m"] = _num(entry["walk_m"])
        area = areas.get(cover.area_id)
        entry["location"] = None if area is None else list(area.location)
        entry["polygon"] = None if area is None or area.polygon is None else [list(p) for p in area.polygon]
        entry["stop_location"] = None if cover.stop_id is None else list(problem.site(cover.stop_id).location)
        out.append(entry)
    return out


def addresses_of(request: PlanRequest) -> dict[str, str | None]:
    """Addresses of visits and bus stops, from the request (the routing model has none)."""
    tasks: list[VisitIn | StopIn] = [*request.visits, *request.stops]
    return {task.id: task.address for task in tasks if task.address}


# -- responses ---------------------------------------------------------------------------------------


class Status(StrEnum):
    QUEUED = "queued"
    SOLVING = "solving"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Status.DONE, Status.FAILED, Status.CANCELLED)


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
        description="no_skilled_vehicle, over_capacity, unreachable, fleet_full or not_worth_serving."
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


class RouteDetail(BaseModel):
    """One crew's ordered stop list."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"plan_id": EXAMPLE_PLAN["id"], **EXAMPLE_PLAN["plan"]["routes"][0]}]}
    )

    plan_id: str
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


class MatrixRequest(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "network": "helsinki",
                    "profile": "walk",
                    "points": [[24.9414, 60.1710], [24.9355, 60.1699]],
                    "ids": ["station", "v-1"],
                }
            ]
        }
    )

    network: str | None = Field(default=None, description="Default: the server's default network.")
    profile: Profile = "drive"
    points: list[LonLat] = Field(min_length=1)
    ids: list[Id] | None = Field(default=None, description="Names of the points, for error messages.")

    @model_validator(mode="after")
    def _ids_match(self) -> MatrixRequest:
        if self.ids is not None and len(self.ids) != len(self.points):
            raise ValueError(f"ids has {len(self.ids)} entries but there are {len(self.points)} points")
        return self


class MatrixOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "network": "helsinki",
                    "profile": "walk",
                    "ids": ["station", "v-1"],
                    "durations_s": [[0, 420], [431, 0]],
                    "distances_m": [[0, 583], [599, 0]],
                }
            ]
        }
    )

    network: str
    profile: str
    ids: list[str] | None = None
    durations_s: list[list[float | None]] = Field(description="[from][to]; null: no path.")
    distances_m: list[list[float | None]]


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
