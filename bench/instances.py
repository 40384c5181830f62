"""Benchmark instances: Solomon VRPTW (``.txt``) and CVRPLIB (``.vrp``), and their conversion to a Problem.

Conventions, declared once:

- customer numbers are the instance's own: Solomon's ``CUST NO.`` column (depot 0), and for
  VRPLIB files the 0-based node index (depot 0, customers 1..n), which is how CVRPLIB ``.sol``
  files number customers;
- Solomon instances use the hierarchical objective (fewest vehicles, then total Euclidean
  distance, unrounded) with the file's fleet; VRPLIB instances use CVRPLIB's objective (total
  distance, each edge rounded to the nearest integer) with a fleet that never binds;
- distances and times in :class:`Instance` are in the instance's own units. :func:`to_problem`
  scales them into the model's seconds and metres by :func:`time_scale`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vrplib
from numpy.typing import NDArray

from routing.model import (
    HORIZON_S,
    Depot,
    Location,
    Objective,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VehicleKind,
    Visit,
)

SOLOMON_SUFFIX = ".txt"
VRPLIB_SUFFIX = ".vrp"
SCALES = (100, 50, 20, 10, 1)
"""Factors from instance units to model seconds/metres, best first (see :func:`time_scale`)."""
HIERARCHICAL_FIXED_COST = 10_000_000
"""Fixed cost per vehicle, in scaled distance units: above any route set's total distance."""
DEPOT_ID = "depot"
TOLERANCE = 1e-6
"""Slack (instance time units) when checking windows in floating point."""

Routes = list[list[int]]
"""Customer numbers per route, in visiting order, depot left out."""


@dataclass(frozen=True, slots=True)
class Bks:
    """A best-known solution's value: vehicles used and total distance."""

    vehicles: int
    distance: float


@dataclass(frozen=True, slots=True, eq=False)
class Instance:
    """One benchmark instance; index 0 is the depot, index ``i`` customer number ``i``.

    ``vehicles`` is the fleet available to solvers (Solomon's ``NUMBER``; for CVRP a fleet that
    never binds). ``hierarchical`` says which objective applies (see the module docstring).
    """

    name: str
    family: str
    coords: NDArray[np.float64]
    demands: NDArray[np.int64]
    capacity: int
    vehicles: int
    ready: NDArray[np.int64]
    due: NDArray[np.int64]
    service: NDArray[np.int64]
    euclid: NDArray[np.float64]
    bks: Bks | None = None
    hierarchical: bool = True

    @property
    def customers(self) -> range:
        return range(1, len(self.coords))

    @property
    def distance(self) -> NDArray[np.float64]:
        """The matrix the objective uses: unrounded (Solomon) or rounded per edge (CVRPLIB)."""
        return self.euclid if self.hierarchical else nint(self.euclid)

    @property
    def has_time_windows(self) -> bool:
        return self.hierarchical


def nint(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half up, as TSPLIB's ``nint`` does."""
    return np.floor(values + 0.5)


def euclidean(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    diff = coords[:, None, :] - coords[None, :, :]
    return np.asarray(np.sqrt((diff**2).sum(axis=-1)), dtype=np.float64)


def family_of(name: str) -> str:
    """``C101`` -> ``C1``, ``RC208`` -> ``RC2``, ``X-n101-k25`` -> ``X``."""
    match = re.match(r"(RC|R|C)(\d)", name.upper())
    if match:
        return match.group(1) + match.group(2)
    return re.split(r"[-_\d]", name, maxsplit=1)[0].upper() or name


def read_solomon(path: Path, *, bks: Bks | None = None) -> Instance:
    """Read a Solomon-format VRPTW file (name, ``VEHICLE`` block, ``CUSTOMER`` table)."""
    lines = [line.split() for line in Path(path).read_text().splitlines()]
    lines = [line for line in lines if line]
    try:
        name = lines[0][0]
        vehicle_at = next(i for i, line in enumerate(lines) if line[0].upper() == "VEHICLE")
        fleet, capacity = (int(v) for v in lines[vehicle_at + 2][:2])
        customer_at = next(i for i, line in enumerate(lines) if line[0].upper() == "CUSTOMER")
        rows = [[float(v) for v in line[:7]] for line in lines[customer_at + 2 :]]
    except (IndexError, StopIteration, ValueError) as error:
        raise ValueError(f"{path}: not a Solomon-format file ({error})") from None
    table = np.array(rows, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 7 or len(table) < 2:
        raise ValueError(f"{path}: expected rows of 7 numbers (customer 0 is the depot)")
    if not np.array_equal(table[:, 0], np.arange(len(table))):
        raise ValueError(f"{path}: customers must be numbered 0..n in order")
    coords = table[:, 1:3]
    return Instance(
        name=name,
        family=family_of(name),
        coords=coords,
        demands=table[:, 3].astype(np.int64),
        capacity=capacity,
        vehicles=fleet,
        ready=table[:, 4].astype(np.int64),
        due=table[:, 5].astype(np.int64),
        service=table[:, 6].astype(np.int64),
        euclid=euclidean(coords),
        bks=bks,
        hierarchical=True,
    )


def read_vrplib(path: Path, *, bks: Bks | None = None) -> Instance:
    """Read a CVRP instance in VRPLIB format (EUC_2D, one depot) with :mod:`vrplib`."""
    data = vrplib.read_instance(str(path), compute_edge_weights=False)
    if str(data.get("edge_weight_type", "")).upper() != "EUC_2D":
        raise ValueError(f"{path}: only EUC_2D instances are supported")
    if list(data["depot"]) != [0]:
        raise ValueError(f"{path}: expected node 1 (index 0) as the only depot, got {data['depot']}")
    coords = np.asarray(data["node_coord"], dtype=np.float64)
    demands = np.asarray(data["demand"], dtype=np.int64)
    capacity = int(data["capacity"])
    n = len(coords)
    least = max(1, math.ceil(int(demands.sum()) / capacity))
    zeros = np.zeros(n, dtype=np.int64)
    return Instance(
        name=str(data["name"]),
        family=family_of(str(data["name"])),
        coords=coords,
        demands=demands,
        capacity=capacity,
        vehicles=min(n - 1, 2 * least + 5),
        ready=zeros,
        due=zeros,
        service=zeros,
        euclid=euclidean(coords),
        bks=bks,
        hierarchical=False,
    )


def read_bks(path: Path) -> dict[str, Bks]:
    """``bks.csv`` with columns ``instance,vehicles,distance`` (others ignored)."""
    with open(path, newline="") as handle:
        return {row["instance"]: Bks(int(row["vehicles"]), float(row["distance"])) for row in csv.DictReader(handle)}


def read_instance(path: Path, *, bks: Bks | None = None) -> Instance:
    if path.suffix == SOLOMON_SUFFIX:
        return read_solomon(path, bks=bks)
    if path.suffix == VRPLIB_SUFFIX:
        return read_vrplib(path, bks=bks)
    raise ValueError(f"{path}: unknown instance format (want {SOLOMON_SUFFIX} or {VRPLIB_SUFFIX})")


def instance_paths(directory: Path) -> dict[str, Path]:
    """Instance files of a directory by name (file stem), sorted."""
    paths = sorted(directory.glob(f"*{SOLOMON_SUFFIX}")) + sorted(directory.glob(f"*{VRPLIB_SUFFIX}"))
    return {p.stem: p for p in paths}


def load_instances(directories: Iterable[Path], names: Sequence[str] | None = None) -> list[Instance]:
    """The named instances (default: all) of the directories, each with its ``bks.csv`` value.

    Raises ``FileNotFoundError`` for a missing directory or name, naming what exists.
    """
    found: dict[str, tuple[Path, Bks | None]] = {}
    for directory in directories:
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory")
        bks_path = directory / "bks.csv"
        known = read_bks(bks_path) if bks_path.exists() else {}
        for name, path in instance_paths(directory).items():
            found.setdefault(name, (path, known.get(name)))
    wanted = list(names) if names else list(found)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise FileNotFoundError(f"instances {', '.join(missing)} not found; have: {', '.join(found) or 'none'}")
    return [read_instance(found[name][0], bks=found[name][1]) for name in wanted]


def time_scale(instance: Instance) -> int:
    """The largest of :data:`SCALES` that keeps the depot's closing time inside ``HORIZON_S``.

    100 unless that would pass the horizon (C2 depots close at 3390: 50 while the horizon was
    72 h, 100 since it is 7 days). CVRP
    instances keep their own units (1): their rounded distances are integers already.
    """
    if not instance.has_time_windows:
        return 1
    horizon = int(instance.due[0])
    for scale in SCALES:
        if horizon * scale <= HORIZON_S:
            return scale
    raise ValueError(f"{instance.name}: depot closes at {horizon}, beyond the model's horizon")


def _locations(coords: NDArray[np.float64]) -> list[Location]:
    """Coordinates as valid (lon, lat) pairs: raw if they fit, else shrunk (not used for solving)."""
    largest = float(np.abs(coords).max(initial=0.0))
    factor = 1.0 if largest <= 90.0 else 90.0 / largest
    return [(float(x) * factor, float(y) * factor) for x, y in coords]


def to_problem(instance: Instance) -> Problem:
    """The instance as a Doorstep :class:`Problem` over the ``"drive"`` matrix.

    Solomon: times and distances scaled by :func:`time_scale` (float matrices, unrounded), a
    large fixed cost per vehicle for the hierarchical objective and a still larger penalty per
    visit left out (serve everyone, then fewest vehicles, then distance). CVRP: the rounded distance
    matrix as durations and distances (scale 1), no windows, no fixed cost.
    """
    scale = time_scale(instance)
    locations = _locations(instance.coords)
    if instance.hierarchical:
        matrix = scale * instance.euclid
        shift = TimeWindow(int(instance.ready[0]) * scale, int(instance.due[0]) * scale)
        fixed_cost = HIERARCHICAL_FIXED_COST
    else:
        matrix = instance.distance
        shift = TimeWindow(0, HORIZON_S)
        fixed_cost = 0
    visits = [
        Visit(
            id=str(c),
            location=locations[c],
            people=0,
            setup_s=int(instance.service[c]) * scale,
            per_person_s=0,
            time_windows=(
                (TimeWindow(int(instance.ready[c]) * scale, int(instance.due[c]) * scale),)
                if instance.has_time_windows
                else ()
            ),
            demand={"load": int(instance.demands[c])},
        )
        for c in instance.customers
    ]
    vehicles = [
        Vehicle(
            id=f"v{i + 1}",
            start_depot=DEPOT_ID,
            end_depot=DEPOT_ID,
            shift=shift,
            kind=VehicleKind.VAN,
            capacity={"load": instance.capacity},
            fixed_cost=fixed_cost,
        )
        for i in range(instance.vehicles)
    ]
    # Serving everyone comes first: a visit left out must cost more than the whole fleet's
    # fixed costs, or dropping one visit is a cheaper way to save a vehicle.
    unassigned_penalty = max(Objective().unassigned_penalty, 10 * instance.vehicles * fixed_cost)
    return Problem(
        depots=[Depot(DEPOT_ID, locations[0])],
        vehicles=vehicles,
        visits=visits,
        matrices={"drive": TravelMatrix(durations_s=matrix.copy(), distances_m=matrix.copy())},
        objective=Objective(duration_cost_per_s=0.0, distance_cost_per_m=1.0, unassigned_penalty=unassigned_penalty),
    )


def route_distance(instance: Instance, routes: Routes) -> float:
    """Total distance of the routes under the instance's objective (depot to depot)."""
    matrix = instance.distance
    total = 0.0
    for route in routes:
        stops = [0, *route, 0]
        total += float(matrix[stops[:-1], stops[1:]].sum()) if route else 0.0
    return total


def check_coverage(instance: Instance, routes: Routes) -> list[str]:
    """Structural faults: a customer missing, served twice or unknown, or more routes than vehicles."""
    problems: list[str] = []
    used = [route for route in routes if route]
    if len(used) > instance.vehicles:
        problems.append(f"{len(used)} routes but the fleet has {instance.vehicles} vehicles")
    seen: dict[int, int] = {}
    for r, route in enumerate(used):
        for c in route:
            if c not in instance.customers:
                problems.append(f"route {r + 1}: {c} is not a customer number")
            elif c in seen:
                problems.append(f"route {r + 1}: customer {c} already served on route {seen[c] + 1}")
            else:
                seen[c] = r
    missing = [c for c in instance.customers if c not in seen]
    if missing:
        problems.append(f"{len(missing)} customers not served: {missing[:10]}")
    return problems


def check_schedule(instance: Instance, routes: Routes) -> list[str]:
    """Capacity, and for Solomon the windows (service starts in its window, waiting allowed)
    and the depot's closing time, in exact (float) instance units."""
    problems: list[str] = []
    for r, route in enumerate(route for route in routes if route):
        load = int(instance.demands[route].sum())
        if load > instance.capacity:
            problems.append(f"route {r + 1}: load {load} exceeds capacity {instance.capacity}")
        if not instance.has_time_windows:
            continue
        t, here = float(instance.ready[0]), 0
        for c in [*route, 0]:
            t = max(t + float(instance.euclid[here, c]), float(instance.ready[c]))
            if t > instance.due[c] + TOLERANCE:
                where = "depot" if c == 0 else f"customer {c}"
                problems.append(f"route {r + 1}: {where} reached at {t:.2f}, after {instance.due[c]}")
                break
            t += float(instance.service[c])
            here = c
    return problems


def check_routes(instance: Instance, routes: Routes) -> list[str]:
    """Every rule the routes break, in words; empty when feasible. Independent of every engine."""
    return check_coverage(instance, routes) or check_schedule(instance, routes)
