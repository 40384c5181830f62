"""VROOM's JSON on the wire: a VROOM input becomes a Doorstep plan request (here), and a Doorstep
plan document becomes VROOM's output (:mod:`service.vroom_output`); ``POST /vroom`` is
:mod:`service.api.vroom`.

Clients that speak VROOM (its front end, openrouteservice's optimization clients, pyvroom's
JSON, scripts) then get Doorstep's portfolio with no code change. The README's "VROOM-compatible
endpoint" table says what maps to what; the choices that are not one-to-one:

- a job's ``setup`` and ``service`` become the visit's ``setup_s`` (Doorstep has no setup that
  depends on the previous location), so setup is always paid: never less than VROOM's time;
- ``delivery`` and ``pickup`` are both counted against capacity for the whole route (Doorstep
  demand accumulates): a route that VROOM's loads would allow with a mixed day may be refused,
  never the reverse. Output loads are VROOM's (deliveries on board at the start, pickups after);
- ``priority`` 0-100 becomes Doorstep's four classes: 0 routine, 1-33 vulnerable, 34-66
  quarantine, 67-100 urgent (a class is served before any less urgent one, as in VROOM);
- ``max_tasks`` is a capacity dimension ``tasks`` of one per job;
- ``costs.per_hour``/``per_km`` must be the same for every vehicle (Doorstep's objective is
  one per day); ``costs.fixed`` is the vehicle's ``fixed_cost``;
- times may be UNIX timestamps: they are shifted to the earliest time given and back on output;
- a vehicle must have a ``start`` (a depot); without ``end`` its route ends at its last job.

Keys Doorstep cannot honour are answered 400 naming them (:data:`UNSUPPORTED`): a plan that
ignored them would look valid and not be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from routing.model import HORIZON_S
from service.schemas.fields import LonLat

# VROOM's error codes and the HTTP status each is answered with.
INTERNAL, INPUT, ROUTING = 1, 2, 3


class VroomError(Exception):
    """An answer in VROOM's error shape: ``{"code": code, "error": message}``."""

    def __init__(self, code: int, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or (400 if code == INPUT else 500)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "error": str(self)}


UNSUPPORTED: dict[tuple[str, ...], str] = {
    ("shipments",): "pickup-and-delivery pairs are not modelled by Doorstep; send them as separate jobs",
    ("vehicles", "*", "max_travel_time"): "Doorstep bounds a route's whole duration, not its travel time alone",
    ("vehicles", "*", "max_distance"): "Doorstep does not bound a route's distance",
    ("vehicles", "*", "costs", "per_task_hour"): "Doorstep does not price service time",
    ("vehicles", "*", "breaks", "*", "max_load"): "Doorstep's breaks have no load condition",
    ("vehicles", "*", "steps", "*", "service_at"): "fixed service times are not modelled",
    ("vehicles", "*", "steps", "*", "service_after"): "fixed service times are not modelled",
    ("vehicles", "*", "steps", "*", "service_before"): "fixed service times are not modelled",
    ("matrices", "*", "costs"): "Doorstep's costs come from durations and distances (vehicles' costs)",
    ("zones",): "zones are not modelled",
}
"""VROOM input keys Doorstep refuses (an empty list or null is accepted as absent), and why."""


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def check_supported(raw: Any) -> None:
    """400 naming the first key of :data:`UNSUPPORTED` the input uses."""

    def walk(node: Any, pattern: tuple[str, ...], where: str, reason: str) -> None:
        if not pattern:
            return
        head, rest = pattern[0], pattern[1:]
        if head == "*":
            children = enumerate(node) if isinstance(node, list) else (node.items() if isinstance(node, dict) else ())
            for key, child in children:
                walk(child, rest, f"{where}[{key}]" if isinstance(node, list) else f"{where}.{key}", reason)
            return
        if isinstance(node, dict) and head in node:
            if not rest:
                if _present(node[head]):
                    raise VroomError(INPUT, f"{where}.{head}".lstrip(".") + f" is not supported: {reason}")
                return
            walk(node[head], rest, f"{where}.{head}", reason)

    for pattern, reason in UNSUPPORTED.items():
        walk(raw, pattern, "", reason)


# -- VROOM's input ------------------------------------------------------------------------------------


class _Wire(BaseModel):
    # VROOM ignores keys it does not know, and so do we (clients add their own).
    model_config = ConfigDict(extra="ignore")


Amounts = list[NonNegativeInt]
Window = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]


class JobIn(_Wire):
    id: NonNegativeInt
    description: str | None = None
    location: LonLat | None = None
    location_index: NonNegativeInt | None = None
    setup: NonNegativeInt = 0
    service: NonNegativeInt = 0
    delivery: Amounts | None = None
    pickup: Amounts | None = None
    amount: Amounts | None = Field(default=None, description="VROOM's older name for delivery.")
    skills: list[NonNegativeInt] = Field(default_factory=list)
    priority: int = Field(default=0, ge=0, le=100)
    time_windows: list[Window] = Field(default_factory=list)


class CostsIn(_Wire):
    fixed: NonNegativeInt = 0
    per_hour: NonNegativeInt = 3600
    per_km: NonNegativeInt = 0


class BreakIn(_Wire):
    id: NonNegativeInt
    time_windows: list[Window] = Field(default_factory=list)
    service: NonNegativeInt = 0
    description: str | None = None


class StepIn(_Wire):
    type: Literal["start", "job", "break", "end", "pickup", "delivery"]
    id: NonNegativeInt | None = None


class VehicleIn(_Wire):
    id: NonNegativeInt
    profile: str = "car"
    description: str | None = None
    start: LonLat | None = None
    start_index: NonNegativeInt | None = None
    end: LonLat | None = None
    end_index: NonNegativeInt | None = None
    capacity: Amounts | None = None
    costs: CostsIn = Field(default_factory=CostsIn)
    skills: list[NonNegativeInt] = Field(default_factory=list)
    time_window: Window | None = None
    breaks: list[BreakIn] = Field(default_factory=list)
    speed_factor: float = Field(default=1.0, gt=0, le=5)
    max_tasks: NonNegativeInt | None = None
    steps: list[StepIn] | None = None


class MatrixIn(_Wire):
    durations: list[list[NonNegativeInt]] | None = None
    distances: list[list[NonNegativeInt]] | None = None


class OptionsIn(_Wire):
    g: bool = False
    c: bool = False


class VroomIn(_Wire):
    jobs: list[JobIn] = Field(default_factory=list)
    vehicles: list[VehicleIn] = Field(min_length=1)
    matrices: dict[str, MatrixIn] = Field(default_factory=dict)
    matrix: list[list[NonNegativeInt]] | None = Field(default=None, description="VROOM's older single matrix.")
    options: OptionsIn = Field(default_factory=OptionsIn)


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(raw: Any) -> VroomIn:
    """The input, checked: 400 naming the first wrong field, or the first unsupported key."""
    if not isinstance(raw, dict):
        raise VroomError(INPUT, "the input must be a JSON object with jobs and vehicles")
    check_supported(raw)
    try:
        return VroomIn.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        raise VroomError(INPUT, f"{_where(tuple(first['loc'])) or 'input'}: {first['msg']}") from None


# -- input -> Doorstep plan request --------------------------------------------------------------------

WALK = {"foot", "walk", "walking", "foot-walking", "pedestrian", "hiking", "foot-hiking"}
DRIVE = {"car", "drive", "driving", "driving-car", "auto", "van", "driving-hgv", "truck", "hgv"}


def priority_class(priority: int) -> int:
    """VROOM's 0-100 priority as Doorstep's class 0-3 (see the module's notes)."""
    if priority == 0:
        return 0
    return 1 if priority <= 33 else 2 if priority <= 66 else 3


@dataclass(slots=True)
class Wire:
    """What the output needs from the input: VROOM's ids, amounts and costs, and the time shift."""

    jobs: dict[str, JobIn]
    vehicles: dict[str, VehicleIn]
    offset: int
    dims: int
    with_matrices: bool
    with_distances: bool
    geometry: bool
    plan_mode: bool
    per_hour: int
    per_km: int
    depot_index: dict[str, int] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)
    """Plan mode: vehicle id -> job and break ids in the order given."""


def _times(vroom: VroomIn) -> list[list[int]]:
    windows = [w for job in vroom.jobs for w in job.time_windows]
    for vehicle in vroom.vehicles:
        if vehicle.time_window is not None:
            windows.append(vehicle.time_window)
        windows.extend(w for brk in vehicle.breaks for w in brk.time_windows)
    return windows


def _offset(vroom: VroomIn) -> int:
    """0 for times of a day; the earliest time when they are timestamps beyond Doorstep's horizon."""
    windows = _times(vroom)
    for start, end in windows:
        if end < start:
            raise VroomError(INPUT, f"a time window ends ({end}) before it starts ({start})")
    if not windows or max(end for _, end in windows) <= HORIZON_S:
        return 0
    offset = min(start for start, _ in windows)
    if max(end for _, end in windows) - offset > HORIZON_S:
        raise VroomError(INPUT, f"time windows span more than {HORIZON_S // 86400} days, Doorstep's horizon")
    return offset


def _profiles(vroom: VroomIn, with_matrices: bool) -> dict[str, str]:
    """VROOM profile -> Doorstep profile (drive, walk)."""
    out: dict[str, str] = {}
    for i, vehicle in enumerate(vroom.vehicles):
        name = vehicle.profile
        if name.lower() in WALK:
            out[name] = "walk"
        elif name.lower() in DRIVE or with_matrices:
            out[name] = "drive"
        else:
            raise VroomError(INPUT, f'vehicles[{i}].profile: "{name}" is not a profile Doorstep routes on '
                                    "(car or foot; with matrices, any name)")
    drives = {name for name, profile in out.items() if profile == "drive"}
    if len(drives) > 1 and with_matrices:
        raise VroomError(INPUT, f"profiles {sorted(drives)} are all vehicle profiles: Doorstep takes one driving "
                                "and one walking matrix")
    return out


def delivery_of(job: JobIn) -> list[int] | None:
    return job.delivery if job.delivery is not None else job.amount


def amounts_of(values: list[int] | None, dims: int, where: str) -> list[int]:
    if values is None:
        return [0] * dims
    if len(values) != dims:
        raise VroomError(INPUT, f"{where} has {len(values)} amounts but vehicles' capacities have {dims}")
    return list(values)


def to_request(vroom: VroomIn, *, default_network: str | None) -> tuple[dict[str, Any], Wire]:
    """The Doorstep plan request (``POST /v1/plans``'s JSON) for ``vroom``, and what the output needs."""
    if vroom.matrix is not None and not vroom.matrices:
        vroom.matrices = {"car": MatrixIn(durations=vroom.matrix)}
    with_matrices = bool(vroom.matrices)
    offset = _offset(vroom)
    profiles = _profiles(vroom, with_matrices)
    # Amount dimensions: the vehicles' capacities say how many; without any, the jobs do.
    capacities = [len(v.capacity) for v in vroom.vehicles if v.capacity is not None]
    dims = max(capacities) if capacities else max(
        [len(a) for j in vroom.jobs for a in (j.delivery, j.pickup, j.amount) if a is not None] + [0])
    max_tasks = any(v.max_tasks is not None for v in vroom.vehicles)
    costs = {(v.costs.per_hour, v.costs.per_km) for v in vroom.vehicles}
    if len(costs) > 1:
        first = (vroom.vehicles[0].costs.per_hour, vroom.vehicles[0].costs.per_km)
        i = next(i for i, v in enumerate(vroom.vehicles) if (v.costs.per_hour, v.costs.per_km) != first)
        raise VroomError(INPUT, f"vehicles[{i}].costs: per_hour and per_km must be the same for every vehicle "
                                "(Doorstep prices travel once per day)")
    per_hour, per_km = costs.pop()

    def place(location: Any, index: int | None, where: str) -> tuple[Any, int | None]:
        if with_matrices:
            if index is None:
                raise VroomError(INPUT, f"{where}_index is missing: with matrices every place needs its index")
            return location, index
        if location is None:
            raise VroomError(INPUT, f"{where} is missing: without matrices every place needs its [lon, lat]")
        return location, None

    depots: dict[Any, dict[str, Any]] = {}
    depot_index: dict[str, int] = {}

    def depot(location: Any, index: int | None) -> str:
        key = ("index", index) if index is not None else ("location", tuple(location))
        if key not in depots:
            depot_id = f"depot-{len(depots)}"
            depots[key] = {"id": depot_id, "location": list(location) if location is not None else [0.0, 0.0]}
            if index is not None:
                depot_index[depot_id] = index
        return str(depots[key]["id"])

    vehicles: list[dict[str, Any]] = []
    seen_vehicles: dict[str, VehicleIn] = {}
    for i, v in enumerate(vroom.vehicles):
        where = f"vehicles[{i}]"
        if str(v.id) in seen_vehicles:
            raise VroomError(INPUT, f"{where}.id: vehicle id {v.id} is used twice")
        seen_vehicles[str(v.id)] = v
        if v.start is None and v.start_index is None:
            raise VroomError(INPUT, f"{where}.start is missing: Doorstep's routes leave from a depot "
                                    "(give the vehicle's start)")
        start = depot(*place(v.start, v.start_index, f"{where}.start"))
        end = None
        if v.end is not None or v.end_index is not None:
            end = depot(*place(v.end, v.end_index, f"{where}.end"))
        shift = v.time_window or [offset, offset + HORIZON_S]
        capacity = {f"c{d}": amount for d, amount in enumerate(amounts_of(v.capacity, dims, f"{where}.capacity"))} \
            if v.capacity is not None else {}
        if v.max_tasks is not None:
            capacity["tasks"] = v.max_tasks
        breaks = []
        for b, brk in enumerate(v.breaks):
            if len(brk.time_windows) > 1:
                raise VroomError(INPUT, f"{where}.breaks[{b}].time_windows: Doorstep's breaks have one window")
            if brk.service <= 0:
                raise VroomError(INPUT, f"{where}.breaks[{b}].service must be > 0 (a break of no time is none)")
            window = brk.time_windows[0] if brk.time_windows else shift
            breaks.append({"id": str(brk.id), "start": window[0] - offset, "end": window[1] - offset,
                           "duration_s": brk.service})
        vehicles.append({
            "id": str(v.id),
            "kind": "van",
            "start_depot": start,
            "end_depot": end,
            "shift": {"start": shift[0] - offset, "end": shift[1] - offset},
            "capacity": capacity,
            "skills": [str(s) for s in v.skills],
            "profile": profiles[v.profile],
            "breaks": breaks,
            "fixed_cost": v.costs.fixed,
            "speed_factor": v.speed_factor,
        })
    visits: list[dict[str, Any]] = []
    jobs: dict[str, JobIn] = {}
    for j, job in enumerate(vroom.jobs):
        where = f"jobs[{j}]"
        if str(job.id) in jobs:
            raise VroomError(INPUT, f"{where}.id: job id {job.id} is used twice")
        jobs[str(job.id)] = job
        location, _ = place(job.location, job.location_index, f"{where}.location")
        delivery = amounts_of(delivery_of(job), dims, f"{where}.delivery")
        pickup = amounts_of(job.pickup, dims, f"{where}.pickup")
        demand = {f"c{d}": delivery[d] + pickup[d] for d in range(dims) if delivery[d] + pickup[d]}
        if max_tasks:
            demand["tasks"] = 1
        visits.append({
            "id": str(job.id),
            "location": list(location) if location is not None else [0.0, 0.0],
            "people": 0,
            "setup_s": job.setup + job.service,
            "per_person_s": 0,
            "time_windows": [{"start": s - offset, "end": e - offset} for s, e in job.time_windows],
            "priority": priority_class(job.priority),
            "skills": [str(s) for s in job.skills],
            "demand": demand,
        })
    request: dict[str, Any] = {
        "name": "VROOM request",
        "depots": list(depots.values()),
        "vehicles": vehicles,
        "visits": visits,
        "objective": {"duration_cost_per_s": per_hour / 3600, "distance_cost_per_m": per_km / 1000},
    }
    with_distances = not with_matrices
    if with_matrices:
        request["matrices"], with_distances = _site_matrices(vroom, profiles, depot_index, visits)
        everywhere = all(v.start is not None and (v.end is not None or v.end_index is None) for v in vroom.vehicles) \
            and all(job.location is not None for job in vroom.jobs)
        if vroom.options.g and everywhere and default_network is not None:
            request["network"] = default_network  # with matrices, a network only draws the routes
    plan_mode = vroom.options.c or any(v.steps for v in vroom.vehicles)
    wire = Wire(jobs=jobs, vehicles=seen_vehicles, offset=offset, dims=dims, with_matrices=with_matrices,
                with_distances=with_distances, geometry=vroom.options.g, plan_mode=plan_mode, per_hour=per_hour,
                per_km=per_km, depot_index=depot_index)
    if plan_mode:
        wire.routes = _plan_routes(vroom, jobs)
    return request, wire


def _site_matrices(vroom: VroomIn, profiles: dict[str, str], depot_index: dict[str, int],
                   visits: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """VROOM's matrices (over its location indices) re-indexed over Doorstep's sites: depots, then jobs."""
    order = [*depot_index.values(), *(vroom.jobs[j].location_index for j in range(len(visits)))]
    out: dict[str, Any] = {}
    with_distances = True
    for name, profile in sorted(set(profiles.items())):
        matrix = vroom.matrices.get(name)
        if matrix is None or matrix.durations is None:
            raise VroomError(INPUT, f'matrices.{name}.durations is missing: vehicles of profile "{name}" use it')
        size = len(matrix.durations)
        for label, rows in (("durations", matrix.durations), ("distances", matrix.distances)):
            if rows is not None and (len(rows) != size or any(len(row) != size for row in rows)):
                raise VroomError(INPUT, f"matrices.{name}.{label} must be square and the same size as durations")
        for index in order:
            if index is not None and index >= size:
                raise VroomError(INPUT, f"location index {index} is outside matrices.{name} ({size} places)")
        durations = [[matrix.durations[a][b] for b in order] for a in order]  # type: ignore[index]
        if matrix.distances is None:
            with_distances = False
            distances = [[0] * len(order) for _ in order]
        else:
            distances = [[matrix.distances[a][b] for b in order] for a in order]  # type: ignore[index]
        out[profile] = {"durations_s": durations, "distances_m": distances}
    return out, with_distances


def _plan_routes(vroom: VroomIn, jobs: dict[str, JobIn]) -> dict[str, list[str]]:
    """Plan mode: each vehicle's steps as Doorstep ids (jobs and breaks), start and end left out."""
    routes: dict[str, list[str]] = {}
    placed: set[str] = set()
    for i, vehicle in enumerate(vroom.vehicles):
        breaks = {str(b.id) for b in vehicle.breaks}
        route: list[str] = []
        for s, step in enumerate(vehicle.steps or []):
            where = f"vehicles[{i}].steps[{s}]"
            if step.type in ("pickup", "delivery"):
                raise VroomError(INPUT, f"{where}.type: {step.type} steps belong to shipments, which are not supported")
            if step.type in ("start", "end"):
                continue
            if step.id is None:
                raise VroomError(INPUT, f"{where}.id is missing")
            ident = str(step.id)
            if step.type == "job":
                if ident not in jobs:
                    raise VroomError(INPUT, f"{where}.id: there is no job {step.id}")
                if ident in placed:
                    raise VroomError(INPUT, f"{where}.id: job {step.id} is in more than one step")
                placed.add(ident)
            elif ident not in breaks:
                raise VroomError(INPUT, f"{where}.id: vehicle {vehicle.id} has no break {step.id}")
            route.append(ident)
        routes[str(vehicle.id)] = route
    return routes
