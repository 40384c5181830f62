"""Request models of the bus side: candidate bus stops, demand areas (points or polygons), labs."""

from __future__ import annotations

from pydantic import Field, NonNegativeInt, model_validator

from routing.model import HORIZON_S, swab_tubes
from service.schemas.fields import Amount, District, Id, LonLat, _In
from service.schemas.times import TimeWindowIn


class StopIn(_In):
    """A candidate bus stop: where a bus may park and sample the people who walk to it."""

    id: Id
    district: District = None
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
    demand: dict[str, Amount] | None = Field(
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
    district: District = None
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
    district: District = None
    location: LonLat
    opening: list[TimeWindowIn] = Field(default_factory=list, max_length=16, description="Empty: always open.")
    handover_s: NonNegativeInt = Field(default=300, le=HORIZON_S)
