"""The problem model: who must be visited, by which fleet, over which travel matrices.

Conventions, declared once (as VROOM's API document does):

- locations are ``(lon, lat)`` in WGS84 degrees;
- times are whole seconds from midnight of the plan's day (a shift ending at 05:00 the next
  day is ``29 * 3600``); time windows are inclusive ``[start_s, end_s]``;
- durations are seconds, distances metres;
- every object has a caller-owned string ``id``; plans refer back by id, never by position.

Objects are frozen and validated once on construction. ``Problem`` checks the consistency
between them (ids, references, matrix shapes) and raises one :class:`ProblemError` that names
the object and the field. Downstream code (engines, evaluator) trusts a ``Problem``.

Matrices are indexed by *site*: the depots in order, then the visits in order
(:attr:`Problem.sites`). A visit that no vehicle can serve is not an input error: it becomes an
unassigned visit with a reason in the plan.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from routing.errors import ProblemError, UnknownReferenceError

Location = tuple[float, float]
"""``(lon, lat)`` in degrees."""

DAY_S = 24 * 3600
HORIZON_S = 7 * DAY_S
"""Latest time any window may end: shifts run past midnight (08:00 to 05:00 next day), and
multi-day rounds fit; a bound keeps integer engine arithmetic far from overflow."""

DEFAULT_MAX_SAMPLE_AGE_S = 4 * 3600
"""Samples must reach a lab within 4 hours of being taken."""

WALK_DETOUR_FACTOR = 1.3
"""Footway metres per straight-line metre, when no walk network gives the real distance."""

POOL_SIZE = 10
"""People whose swabs share one tube when samples are pooled (10-in-1)."""


class Amounts(Mapping[str, int]):
    """An immutable, hashable, picklable mapping of capacity dimension -> whole amount."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        self._items: dict[str, int] = dict(sorted(dict(items).items()))

    def __getitem__(self, key: str) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"Amounts({self._items})"

    def __reduce__(self) -> tuple[type[Amounts], tuple[dict[str, int]]]:
        return (Amounts, (self._items,))


def swab_tubes(people: int, *, pooled: bool = True) -> int:
    """Tubes needed for a household: one per person if quarantined, else one per 10 (pooled)."""
    if people < 0:
        raise ValueError(f"people must be >= 0, got {people}")
    return people if not pooled else math.ceil(people / POOL_SIZE)


class Priority(IntEnum):
    """How much it matters that a visit is made today; higher is served first."""

    ROUTINE = 0
    VULNERABLE = 1  # elderly, bedridden, disabled, pregnant, babies
    QUARANTINE = 2  # home quarantine: sampled one per tube, first
    URGENT = 3


class VehicleKind(StrEnum):
    BUS = "bus"
    VAN = "van"
    TEAM = "team"  # a home-visit team, on foot or by van per its profile


def _check_location(location: Location, where: str, path: tuple[str | int, ...]) -> Location:
    try:
        lon, lat = (float(v) for v in location)
    except (TypeError, ValueError):
        raise ProblemError(f"{where}: location must be (lon, lat), got {location!r}", path=path) from None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or math.isnan(lon) or math.isnan(lat):
        raise ProblemError(
            f"{where}: location ({lon}, {lat}) is not a (lon, lat) pair in degrees", path=path
        )
    return (lon, lat)


def _check_id(value: str, kind: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ProblemError(f"{kind} id must be a non-empty string, got {value!r}", path=("id",))


def format_clock(seconds: float) -> str:
    """``"HH:MM"`` for seconds from midnight of the plan's day, the one clock format of the output:
    hours pass 24 on the next days (``"29:00"`` is 05:00 the next day), so times sort as text."""
    total = math.floor(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """An inclusive interval ``[start_s, end_s]`` of seconds from midnight."""

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise ProblemError(f"time window starts before midnight ({self.start_s} s)")
        if self.end_s < self.start_s:
            raise ProblemError(
                f"time window ends ({format_clock(self.end_s)}) before it starts ({format_clock(self.start_s)})"
            )
        if self.end_s > HORIZON_S:
            raise ProblemError(f"time window ends after the 7-day horizon ({self.end_s} s)")

    def __contains__(self, t: float) -> bool:
        return self.start_s <= t <= self.end_s

    def __str__(self) -> str:
        return f"{format_clock(self.start_s)}-{format_clock(self.end_s)}"


ANY_TIME = TimeWindow(0, HORIZON_S)


@dataclass(frozen=True, slots=True)
class Depot:
    """Where vehicles start and end their shift (a station, a hospital car park)."""

    id: str
    location: Location

    def __post_init__(self) -> None:
        _check_id(self.id, "depot")
        object.__setattr__(
            self, "location", _check_location(self.location, f'Depot "{self.id}"', ("location",))
        )


@dataclass(frozen=True, slots=True)
class Break:
    """A crew break of ``duration_s`` that must *start* within ``window``."""

    id: str
    window: TimeWindow
    duration_s: int

    def __post_init__(self) -> None:
        _check_id(self.id, "break")
        if self.duration_s <= 0:
            raise ProblemError(
                f'Break "{self.id}": duration_s must be > 0, got {self.duration_s}',
                path=("duration_s",),
            )


def _frozen_demand(demand: Mapping[str, int], where: str) -> Mapping[str, int]:
    for dim, amount in demand.items():
        if not isinstance(dim, str) or not dim:
            raise ProblemError(f"{where}: capacity dimension names must be non-empty strings")
        if int(amount) != amount or amount < 0:
            raise ProblemError(
                f'{where}: "{dim}" must be a whole number >= 0, got {amount}', path=(dim,)
            )
    return Amounts({k: int(v) for k, v in demand.items()})


@dataclass(frozen=True, slots=True)
class Visit:
    """A home-visit request: a household whose residents are sampled at their door.

    Service time is ``setup_s + per_person_s * people`` (health questions, temperature, then
    swabs: minutes, not seconds). ``time_windows`` empty means any time in the vehicle's
    shift. ``demand`` is consumed per capacity dimension (e.g. ``{"tubes": 1}``; see
    :func:`swab_tubes`). A ``required`` visit is served whenever possible; an optional one is
    served only if that costs less than its ``penalty``. ``preferred_vehicle`` (when re-planning)
    is the vehicle it was given before: moving it elsewhere costs ``Objective.reassignment_cost``.
    ``notes``, ``contact`` and ``address`` are personal data: they are never part of ``repr`` and
    so never reach a log through it (the crews need the address; the solver never reads it).
    """

    id: str
    location: Location
    people: int = 1
    setup_s: int = 300
    per_person_s: int = 60
    time_windows: tuple[TimeWindow, ...] = ()
    priority: Priority = Priority.ROUTINE
    skills: frozenset[str] = frozenset()
    demand: Mapping[str, int] = field(default_factory=dict)
    required: bool = True
    penalty: int | None = None
    preferred_vehicle: str | None = None
    notes: str | None = field(default=None, repr=False)
    contact: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_id(self.id, "visit")
        where = f'Visit "{self.id}"'
        object.__setattr__(self, "location", _check_location(self.location, where, ("location",)))
        for name in ("people", "setup_s", "per_person_s"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ProblemError(f"{where}: {name} must be a whole number >= 0, got {value}", path=(name,))
        object.__setattr__(self, "time_windows", _sorted_windows(self.time_windows, where))
        object.__setattr__(self, "priority", Priority(self.priority))
        object.__setattr__(self, "skills", frozenset(self.skills))
        object.__setattr__(self, "demand", _frozen_demand(self.demand, where))
        if self.penalty is not None and self.penalty < 0:
            raise ProblemError(f"{where}: penalty must be >= 0, got {self.penalty}", path=("penalty",))
        if not self.required and self.penalty is None:
            raise ProblemError(
                f"{where}: an optional visit needs a penalty (the cost of not making it)",
                path=("penalty",),
            )

    @property
    def service_s(self) -> int:
        return self.setup_s + self.per_person_s * self.people

    @property
    def windows(self) -> tuple[TimeWindow, ...]:
        """The time windows, or the whole horizon when none were given."""
        return self.time_windows or (ANY_TIME,)


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A bus, a van or a home-visit team, with its shift, capacities and skills.

    ``end_depot=None`` is an open end: the route finishes at its last stop. A capacity
    dimension the vehicle does not list is unlimited for it. ``speed_factor`` scales travel
    speed (0.8: a bus drives at 80 % of the network's speeds, so travel takes 1/0.8 as long).
    ``max_duration_s`` bounds the route from leaving the start depot to the end.
    A bus samples at stops with ``lanes`` queues, ``seconds_per_person`` each (field figures:
    2 lanes, about 20 s a person). Buses serve bus stops, teams serve home visits, vans either.
    """

    id: str
    start_depot: str
    end_depot: str | None
    shift: TimeWindow
    kind: VehicleKind = VehicleKind.TEAM
    capacity: Mapping[str, int] = field(default_factory=dict)
    skills: frozenset[str] = frozenset()
    profile: str = "drive"
    breaks: tuple[Break, ...] = ()
    max_duration_s: int | None = None
    fixed_cost: int = 0
    speed_factor: float = 1.0
    lanes: int = 2
    seconds_per_person: int = 20

    def __post_init__(self) -> None:
        _check_id(self.id, "vehicle")
        where = f'Vehicle "{self.id}"'
        object.__setattr__(self, "kind", VehicleKind(self.kind))
        object.__setattr__(self, "capacity", _frozen_demand(self.capacity, where))
        object.__setattr__(self, "skills", frozenset(self.skills))
        object.__setattr__(self, "breaks", tuple(self.breaks))
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ProblemError(
                f"{where}: max_duration_s must be > 0, got {self.max_duration_s}", path=("max_duration_s",)
            )
        if self.fixed_cost < 0:
            raise ProblemError(f"{where}: fixed_cost must be >= 0, got {self.fixed_cost}", path=("fixed_cost",))
        if not (self.speed_factor > 0 and math.isfinite(self.speed_factor)):
            raise ProblemError(
                f"{where}: speed_factor must be > 0, got {self.speed_factor}", path=("speed_factor",)
            )
        if self.lanes < 1 or self.seconds_per_person < 0:
            raise ProblemError(
                f"{where}: lanes must be >= 1 and seconds_per_person >= 0", path=("lanes",)
            )
        ids = [b.id for b in self.breaks]
        if len(set(ids)) != len(ids):
            raise ProblemError(f"{where}: break ids must be unique, got {ids}", path=("breaks",))

    def can_carry(self, demand: Mapping[str, int]) -> bool:
        return all(amount <= self.capacity.get(dim, amount) for dim, amount in demand.items())

    @property
    def serves_visits(self) -> bool:
        return self.kind is not VehicleKind.BUS

    @property
    def serves_stops(self) -> bool:
        return self.kind is not VehicleKind.TEAM

    def may_serve(self, task: Visit | BusStop) -> bool:
        """Whether this vehicle may serve the task at all: its kind, its skills, and for a bus
        stop whether everyone expected fits in the stop's longest allowed stay."""
        if isinstance(task, Visit):
            return self.serves_visits and task.skills <= self.skills
        return self.serves_stops and (task.max_dwell_s is None or self.dwell_s(task) <= task.max_dwell_s)

    def dwell_s(self, stop: BusStop) -> int:
        """Time parked at ``stop``: setting up, then everyone expected through the lanes."""
        return stop.setup_s + math.ceil(stop.people * self.seconds_per_person / self.lanes)


@dataclass(frozen=True, slots=True)
class BusStop:
    """A candidate place where a bus can park and sample the people who walk to it.

    ``people`` is how many are expected (derived from demand areas when the problem has them).
    At most one stop of an alternatives ``group`` is used (two car parks of one compound).
    ``max_dwell_s`` caps how long a bus may stay; ``setup_s`` is parking and setting up.
    ``demand`` (tubes, kits) is derived from ``people`` when the stop's people are derived.
    """

    id: str
    location: Location
    people: int = 0
    time_windows: tuple[TimeWindow, ...] = ()
    required: bool = False
    group: str | None = None
    max_dwell_s: int | None = None
    setup_s: int = 600
    demand: Mapping[str, int] = field(default_factory=dict)
    notes: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_id(self.id, "bus stop")
        where = f'Bus stop "{self.id}"'
        object.__setattr__(self, "location", _check_location(self.location, where, ("location",)))
        if int(self.people) != self.people or self.people < 0:
            raise ProblemError(f"{where}: people must be a whole number >= 0, got {self.people}", path=("people",))
        if self.setup_s < 0:
            raise ProblemError(f"{where}: setup_s must be >= 0, got {self.setup_s}", path=("setup_s",))
        if self.max_dwell_s is not None and self.max_dwell_s <= self.setup_s:
            raise ProblemError(
                f"{where}: max_dwell_s ({self.max_dwell_s}) must exceed setup_s ({self.setup_s})",
                path=("max_dwell_s",),
            )
        object.__setattr__(self, "time_windows", _sorted_windows(self.time_windows, where))
        object.__setattr__(self, "demand", _frozen_demand(self.demand, where))

    @property
    def windows(self) -> tuple[TimeWindow, ...]:
        return self.time_windows or (ANY_TIME,)


@dataclass(frozen=True, slots=True)
class DemandArea:
    """Where people live or work: a point (or the centroid of a polygon) with a population.

    Residents walk to a chosen bus stop at most ``walk_limit_m`` metres away along footways.
    """

    id: str
    location: Location
    population: int
    walk_limit_m: float = 400.0
    polygon: tuple[Location, ...] | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "demand area")
        where = f'Area "{self.id}"'
        object.__setattr__(self, "location", _check_location(self.location, where, ("location",)))
        if int(self.population) != self.population or self.population < 0:
            raise ProblemError(
                f"{where}: population must be a whole number >= 0, got {self.population}", path=("population",)
            )
        if not self.walk_limit_m > 0:
            raise ProblemError(f"{where}: walk_limit_m must be > 0", path=("walk_limit_m",))
        if self.polygon is not None:
            object.__setattr__(
                self, "polygon", tuple(_check_location(p, where, ("polygon",)) for p in self.polygon)
            )


@dataclass(frozen=True, slots=True)
class Lab:
    """A laboratory or sample transfer point, open during ``opening`` (empty: always).

    Handing samples over takes ``handover_s``; a vehicle may drop samples at any lab as often
    as it needs ("small batches, many trips"), which also frees its tube racks.
    """

    id: str
    location: Location
    opening: tuple[TimeWindow, ...] = ()
    handover_s: int = 300

    def __post_init__(self) -> None:
        _check_id(self.id, "lab")
        where = f'Lab "{self.id}"'
        object.__setattr__(self, "location", _check_location(self.location, where, ("location",)))
        object.__setattr__(self, "opening", _sorted_windows(self.opening, where))
        if self.handover_s < 0:
            raise ProblemError(f"{where}: handover_s must be >= 0", path=("handover_s",))

    @property
    def windows(self) -> tuple[TimeWindow, ...]:
        return self.opening or (ANY_TIME,)


def _sorted_windows(windows: Iterable[TimeWindow], where: str) -> tuple[TimeWindow, ...]:
    ordered = tuple(sorted(windows, key=lambda w: w.start_s))
    for earlier, later in itertools.pairwise(ordered):
        if later.start_s <= earlier.end_s:
            raise ProblemError(
                f"{where}: time windows {earlier} and {later} overlap; merge them", path=("time_windows",)
            )
    return ordered


@dataclass(frozen=True, slots=True)
class TravelMatrix:
    """Directed travel durations (s) and distances (m) between sites: ``[from, to]``.

    ``inf`` marks a pair with no path. Never symmetrised: one-way streets make it asymmetric.
    """

    durations_s: NDArray[np.float64]
    distances_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        durations = np.asarray(self.durations_s, dtype=np.float64)
        distances = np.asarray(self.distances_m, dtype=np.float64)
        if durations.ndim != 2 or durations.shape[0] != durations.shape[1]:
            raise ProblemError(f"travel matrix must be square, got shape {durations.shape}")
        if distances.shape != durations.shape:
            raise ProblemError(
                f"distances {distances.shape} and durations {durations.shape} differ in shape"
            )
        for name, values in (("durations_s", durations), ("distances_m", distances)):
            if np.isnan(values).any() or (values < 0).any():
                raise ProblemError(f"travel matrix {name} has negative or NaN entries", path=(name,))
        durations.flags.writeable = False
        distances.flags.writeable = False
        object.__setattr__(self, "durations_s", durations)
        object.__setattr__(self, "distances_m", distances)

    @property
    def size(self) -> int:
        return int(self.durations_s.shape[0])


@dataclass(frozen=True, slots=True)
class Objective:
    """What a plan costs: travel, fixed costs of used vehicles, and visits not made.

    A required visit left out costs ``unassigned_penalty`` times ``priority_factor`` to the
    power of its priority, so when the fleet is short the least urgent visits go first.
    An optional visit left out costs its own ``penalty``. A bus stop left out costs
    ``stop_penalty_per_person`` for each person expected there. A visit served by another
    vehicle than its ``preferred_vehicle`` costs ``reassignment_cost`` (minimal disruption).

    ``makespan_cost_per_s`` prices the day's makespan: from the first departure to the last
    return of the vehicles used. Travel time alone packs the work onto few crews (one long day,
    others idle); a makespan cost spreads it so everyone is home sooner.
    """

    duration_cost_per_s: float = 1.0
    distance_cost_per_m: float = 0.0
    unassigned_penalty: int = 10_000_000
    priority_factor: float = 4.0
    stop_penalty_per_person: int = 1_000_000
    reassignment_cost: float = 0.0
    makespan_cost_per_s: float = 0.0

    def __post_init__(self) -> None:
        names = (
            "duration_cost_per_s",
            "distance_cost_per_m",
            "unassigned_penalty",
            "stop_penalty_per_person",
            "reassignment_cost",
            "makespan_cost_per_s",
        )
        for name in names:
            if getattr(self, name) < 0:
                raise ProblemError(f"objective {name} must be >= 0", path=(name,))
        if self.priority_factor < 1:
            raise ProblemError("objective priority_factor must be >= 1", path=("priority_factor",))

    def penalty_of(self, task: Visit | BusStop) -> float:
        """What leaving a visit or a bus stop out of the plan costs."""
        if isinstance(task, BusStop):
            return float(self.stop_penalty_per_person * max(1, task.people))
        if not task.required:
            return float(task.penalty or 0)
        return self.unassigned_penalty * self.priority_factor ** int(task.priority)


Site = Depot | Visit | BusStop | Lab
"""Anything a vehicle drives to."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class Problem:
    """One day's problem: depots, vehicles, home visits, bus stops, demand areas and labs,
    over travel matrices (one per profile, indexed by :attr:`sites`).

    ``area_walk_m`` gives walking metres from each demand area (rows) to each bus stop
    (columns), along footways; without it, straight-line distance times
    ``WALK_DETOUR_FACTOR`` stands in. With labs, every sample must reach one within
    ``max_sample_age_s`` of being taken, and vehicles drop everything before their shift ends.

    Raises :class:`ProblemError` (or :class:`UnknownReferenceError`) on the first
    inconsistency, naming the object and field. Immutable: the sequences given are kept as
    tuples, the matrices as a read-only mapping, and a changed problem is a new one, validated
    again (:meth:`replace`, or ``dataclasses.replace``). Compared by identity.
    """

    depots: Sequence[Depot]
    vehicles: Sequence[Vehicle]
    visits: Sequence[Visit] = ()
    matrices: Mapping[str, TravelMatrix]
    objective: Objective = field(default_factory=Objective)
    stops: Sequence[BusStop] = ()
    areas: Sequence[DemandArea] = ()
    labs: Sequence[Lab] = ()
    area_walk_m: NDArray[np.float64] | None = None
    max_sample_age_s: int = DEFAULT_MAX_SAMPLE_AGE_S
    _site_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Stored as tuples, a read-only mapping and a read-only array: nothing of a validated
        # problem can change under the engines and the evaluator, which trust it.
        for name in ("depots", "vehicles", "visits", "stops", "areas", "labs"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "matrices", MappingProxyType(dict(self.matrices)))
        if self.objective is None:  # accepted, as before the problem was a dataclass
            object.__setattr__(self, "objective", Objective())
        object.__setattr__(self, "max_sample_age_s", int(self.max_sample_age_s))
        if self.area_walk_m is not None:
            walk_m = np.array(self.area_walk_m, dtype=np.float64)
            walk_m.flags.writeable = False
            object.__setattr__(self, "area_walk_m", walk_m)
        object.__setattr__(self, "_site_index", {})
        self._validate()

    def _validate(self) -> None:
        if not self.depots:
            raise ProblemError("a problem needs at least one depot", path=("depots",))
        if not self.vehicles:
            raise ProblemError("a problem needs at least one vehicle", path=("vehicles",))
        if self.max_sample_age_s <= 0:
            raise ProblemError("max_sample_age_s must be > 0", path=("max_sample_age_s",))
        seen: dict[str, str] = {}
        for kind, objects in self._site_groups():
            for i, obj in enumerate(objects):
                if obj.id in seen:
                    raise ProblemError(
                        f'id "{obj.id}" is used twice (by {seen[obj.id]} and {kind}[{i}]); ids must be unique',
                        path=(kind, i, "id"),
                    )
                seen[obj.id] = f"{kind}[{i}]"
                self._site_index[obj.id] = len(self._site_index)
        area_ids: set[str] = set()
        for i, area in enumerate(self.areas):
            if area.id in area_ids or area.id in seen:
                raise ProblemError(f'id "{area.id}" is used twice', path=("areas", i, "id"))
            area_ids.add(area.id)
        vehicle_ids: set[str] = set()
        for i, vehicle in enumerate(self.vehicles):
            self._validate_vehicle(i, vehicle, vehicle_ids)
            if vehicle.fixed_cost >= self.objective.unassigned_penalty and self.tasks:
                # Nobody may be missed to save a vehicle (measured: Solomon R101 lost a customer).
                raise ProblemError(
                    f'Vehicle "{vehicle.id}": fixed_cost ({vehicle.fixed_cost}) must be below the objective\'s '
                    f"unassigned_penalty ({self.objective.unassigned_penalty}), or leaving people unvisited "
                    "would look cheaper than sending it",
                    path=("vehicles", i, "fixed_cost"),
                )
        for i, visit in enumerate(self.visits):
            if visit.preferred_vehicle is not None and visit.preferred_vehicle not in vehicle_ids:
                raise UnknownReferenceError(
                    f'Visit "{visit.id}": preferred_vehicle "{visit.preferred_vehicle}" is not a vehicle',
                    path=("visits", i, "preferred_vehicle"),
                )
        for profile, matrix in self.matrices.items():
            if matrix.size != len(self._site_index):
                raise ProblemError(
                    f'travel matrix "{profile}" is {matrix.size}x{matrix.size} but the problem has '
                    f"{len(self._site_index)} sites (depots, visits, bus stops, labs)",
                    path=("matrices", profile),
                )
        if self.area_walk_m is not None and self.area_walk_m.shape != (len(self.areas), len(self.stops)):
            raise ProblemError(
                f"area_walk_m is {self.area_walk_m.shape} but there are {len(self.areas)} areas "
                f"and {len(self.stops)} bus stops",
                path=("area_walk_m",),
            )

    def _site_groups(self) -> tuple[tuple[str, Sequence[Site]], ...]:
        return (("depots", self.depots), ("visits", self.visits), ("stops", self.stops), ("labs", self.labs))

    def _validate_vehicle(self, i: int, vehicle: Vehicle, vehicle_ids: set[str]) -> None:
        where = f'Vehicle "{vehicle.id}"'
        if vehicle.id in vehicle_ids:
            raise ProblemError(f'vehicle id "{vehicle.id}" is used twice', path=("vehicles", i, "id"))
        vehicle_ids.add(vehicle.id)
        for name in ("start_depot", "end_depot"):
            ref = getattr(vehicle, name)
            if ref is not None and ref not in self.depot_ids:
                raise UnknownReferenceError(
                    f'{where}: {name} "{ref}" is not a depot of this problem', path=("vehicles", i, name)
                )
        if vehicle.profile not in self.matrices:
            raise UnknownReferenceError(
                f'{where}: no travel matrix for profile "{vehicle.profile}" '
                f"(have: {', '.join(sorted(self.matrices)) or 'none'})",
                path=("vehicles", i, "profile"),
            )

    @property
    def depot_ids(self) -> frozenset[str]:
        return frozenset(d.id for d in self.depots)

    @property
    def sites(self) -> tuple[Site, ...]:
        """Everything a vehicle drives to, in matrix order: depots, visits, bus stops, labs."""
        return (*self.depots, *self.visits, *self.stops, *self.labs)

    def site_index(self, site_id: str) -> int:
        """Row/column of a depot, visit, bus stop or lab in the travel matrices."""
        try:
            return self._site_index[site_id]
        except KeyError:
            raise UnknownReferenceError(f'"{site_id}" is not a site (depot, visit, stop, lab) of the problem') from None

    def site(self, site_id: str) -> Site:
        return self.sites[self.site_index(site_id)]

    def visit(self, visit_id: str) -> Visit:
        site = self.site(visit_id)
        if not isinstance(site, Visit):
            raise UnknownReferenceError(f'"{visit_id}" is not a visit')
        return site

    def task(self, task_id: str) -> Visit | BusStop:
        """A home visit or a bus stop: the things a plan serves."""
        site = self.site(task_id)
        if not isinstance(site, Visit | BusStop):
            raise UnknownReferenceError(f'"{task_id}" is a {type(site).__name__.lower()}, not a visit or bus stop')
        return site

    @property
    def tasks(self) -> tuple[Visit | BusStop, ...]:
        return (*self.visits, *self.stops)

    def alternatives_used(self, left_out: Collection[str]) -> dict[str, str]:
        """Alternatives group -> the stop of it that is served (not in ``left_out``): the group's
        other stops are not missed, since at most one of a group is used."""
        left_out = set(left_out)
        return {s.group: s.id for s in self.stops if s.group is not None and s.id not in left_out}

    def vehicle(self, vehicle_id: str) -> Vehicle:
        for vehicle in self.vehicles:
            if vehicle.id == vehicle_id:
                return vehicle
        raise UnknownReferenceError(f'"{vehicle_id}" is not a vehicle of this problem')

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Every capacity dimension any visit or stop consumes, sorted."""
        return tuple(sorted({dim for task in self.tasks for dim in task.demand}))

    def with_stops(self, stops: Iterable[BusStop]) -> Problem:
        """The same problem with only ``stops`` (a subset, possibly restaffed) and no areas:
        what gets routed once stops are chosen. Matrices keep only the remaining sites."""
        return self._restricted(vehicles=self.vehicles, visits=self.visits, stops=tuple(stops))

    def subproblem(self, vehicle_ids: Iterable[str], task_ids: Iterable[str]) -> Problem:
        """Only some vehicles and tasks (all depots and labs kept): an independent part of a plan."""
        wanted_vehicles, wanted_tasks = set(vehicle_ids), set(task_ids)
        return self._restricted(
            vehicles=tuple(v for v in self.vehicles if v.id in wanted_vehicles),
            visits=tuple(v for v in self.visits if v.id in wanted_tasks),
            stops=tuple(s for s in self.stops if s.id in wanted_tasks),
        )

    def _restricted(
        self, *, vehicles: Sequence[Vehicle], visits: Sequence[Visit], stops: Sequence[BusStop]
    ) -> Problem:
        sites: tuple[Site, ...] = (*self.depots, *visits, *stops, *self.labs)
        index = np.array([self.site_index(site.id) for site in sites], dtype=np.intp)
        matrices = {
            name: TravelMatrix(m.durations_s[np.ix_(index, index)], m.distances_m[np.ix_(index, index)])
            for name, m in self.matrices.items()
        }
        return self.replace(
            vehicles=vehicles, visits=visits, stops=stops, areas=(), area_walk_m=None, matrices=matrices
        )

    def replace(self, **changes: object) -> Problem:
        """A copy with some parts replaced (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __reduce__(self) -> tuple[object, ...]:
        # Engines run in other processes; rebuilding re-validates, which is cheap.
        parts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return (_rebuild_problem, (parts | {"matrices": dict(self.matrices)},))

    def __repr__(self) -> str:
        return (
            f"Problem({len(self.depots)} depots, {len(self.vehicles)} vehicles, {len(self.visits)} visits, "
            f"{len(self.stops)} stops, {len(self.areas)} areas, {len(self.labs)} labs, "
            f"profiles {sorted(self.matrices)})"
        )


def _rebuild_problem(parts: dict[str, object]) -> Problem:
    return Problem(**parts)  # type: ignore[arg-type]
