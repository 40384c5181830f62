"""Realistic, seeded scenarios for demos, examples and tests.

The figures follow the field (``docs/domain.md``: city-wide testing rounds, Zhengzhou 2022):
home-visit teams of three (community worker, building leader, medic) sample residents who
cannot come out, door to door. At each door the medic asks about health, takes the
temperature and swabs, so a visit is minutes: a setup of 5 to 8 minutes plus 1 to 2 minutes
per person. Quarantined households are sampled one person per tube, everyone else pooled
(10 per tube). Locked-down buildings are visited early (windows from 06:30), households with
pupils in online classes at the 12:00-14:00 green channel, and teams work 08:00-16:00 with a
30 minute lunch starting between 11:30 and 13:30.

Everything here is deterministic for a given seed and network: nodes are taken in sorted id
order before the seeded generator picks among them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from routing.model import (
    Break,
    Depot,
    Priority,
    TimeWindow,
    Vehicle,
    VehicleKind,
    Visit,
    swab_tubes,
)

H = 3600
SHIFT = TimeWindow(8 * H, 16 * H)
LUNCH = Break("lunch", TimeWindow(11 * H + 30 * 60, 13 * H + 30 * 60), 30 * 60)
LOCKED_DOWN = TimeWindow(6 * H + 30 * 60, 10 * H)  # door to door from 06:30 in locked-down buildings
GREEN_CHANNEL = TimeWindow(12 * H, 14 * H)  # pupils and teachers between online classes
CARER_MORNING = TimeWindow(9 * H, 11 * H + 30 * 60)
CARER_AFTERNOON = TimeWindow(13 * H + 30 * 60, 16 * H)

PAEDIATRIC = "paediatric"

WALK_CAPACITY = {"kits": 60, "tubes": 30}
"""What a team on foot carries: swab kits (one per person) and tubes, in a cooler bag."""
VAN_CAPACITY = {"kits": 120, "tubes": 60}
"""What a team with a community van carries."""

MAX_VISIT_SPACING_M = 150.0
"""Visits are placed at walkable nodes at most this far from a drivable one, so vans reach them."""
JITTER_M = (2.0, 8.0)
"""A visit lies a few metres off its street node: the door, not the crossing."""

_M_PER_DEG_LAT = 111_320.0


class HasGraph(Protocol):
    """Anything with an OSMnx-compatible graph in EPSG:4326 (``routing.network.RoadNetwork``)."""

    @property
    def graph(self) -> nx.MultiDiGraph: ...


@dataclass(frozen=True)
class _Household:
    """One kind of household that asks for a home visit, with how common it is."""

    kind: str
    share: float
    priority: Priority
    people: tuple[int, int]  # inclusive range
    setup_s: tuple[int, int]
    per_person_s: int
    pooled: bool = True
    skill: str | None = None
    notes: tuple[str, ...] = ()


# Shares: ~20 % quarantined, ~40 % vulnerable (elderly, bedridden, disabled, pregnant, babies),
# a few urgent close contacts, the rest routine (missed the fixed point, not home last round).
HOUSEHOLDS: tuple[_Household, ...] = (
    _Household("quarantine", 0.20, Priority.QUARANTINE, (1, 5), (420, 480), 90, pooled=False,
               notes=("home quarantine: full PPE, sample at the door", "quarantined household, one tube each",
                      "quarantine day 5; leave nothing behind")),
    _Household("elderly", 0.18, Priority.VULNERABLE, (1, 2), (360, 420), 90,
               notes=("elderly, lives alone; hard of hearing, knock loudly", "elderly couple, 4th floor, no lift",
                      "call the daughter before arriving")),
    _Household("bedridden", 0.10, Priority.VULNERABLE, (1, 3), (420, 480), 120,
               notes=("bedridden resident, carer present", "bedridden after surgery; swab in bed")),
    _Household("disabled", 0.04, Priority.VULNERABLE, (1, 3), (360, 420), 120,
               notes=("wheelchair user, ground floor", "visually impaired; building leader accompanies")),
    _Household("pregnant", 0.03, Priority.VULNERABLE, (2, 3), (300, 360), 60,
               notes=("pregnant resident, 8th month",)),
    _Household("baby", 0.05, Priority.VULNERABLE, (3, 5), (360, 480), 120, skill=PAEDIATRIC,
               notes=("family with a 6-month-old baby", "newborn twins; paediatric swabs")),
    _Household("urgent", 0.03, Priority.URGENT, (1, 4), (360, 420), 90, pooled=False,
               notes=("close contact flagged by the health-code system",)),
    _Household("routine", 0.37, Priority.ROUTINE, (1, 4), (300, 360), 60,
               notes=("missed the fixed sampling point", "not home in the last round", "works night shifts")),
)

# Shares of time windows: locked-down buildings early, pupils at the green channel, carers at set
# hours; most households are home all day (no window: any time within the team's shift).
WINDOWS: tuple[tuple[float, tuple[TimeWindow, ...]], ...] = (
    (0.10, (LOCKED_DOWN,)),
    (0.10, (GREEN_CHANNEL,)),
    (0.08, (CARER_MORNING,)),
    (0.07, (CARER_AFTERNOON,)),
)


def _quotas(n: int, shares: Sequence[float]) -> list[int]:
    """Split ``n`` into whole counts proportional to ``shares`` (largest remainders)."""
    exact = [n * s / sum(shares) for s in shares]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _node_table(graph: nx.MultiDiGraph) -> tuple[list[Any], np.ndarray]:
    """Node ids sorted (a stable order whatever the graph's insertion order) and their lon/lat."""
    ids = sorted(graph.nodes, key=str)
    lonlat = np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in ids], dtype=np.float64)
    return ids, lonlat


def _metric(lonlat: np.ndarray, lat0: float) -> np.ndarray:
    """Local equirectangular metres: good to a fraction of a percent over a district."""
    scale = np.array([_M_PER_DEG_LAT * math.cos(math.radians(lat0)), _M_PER_DEG_LAT])
    return lonlat * scale


def _street_names(graph: nx.MultiDiGraph) -> dict[Any, str]:
    """The name of a named street at each node that has one (alphabetically first if several)."""
    names: dict[Any, str] = {}
    for u, v, name in graph.edges(data="name"):
        if isinstance(name, list):
            name = name[0] if name else None
        if not isinstance(name, str) or not name.strip() or name.lower() == "nan":
            continue
        for node in (u, v):
            if node not in names or name.strip() < names[node]:
                names[node] = name.strip()
    return names


def home_visit_scenario(
    network_walk: HasGraph,
    network_drive: HasGraph | None,
    *,
    visits: int = 80,
    teams: int = 5,
    seed: int = 1,
) -> tuple[list[Depot], list[Vehicle], list[Visit]]:
    """A day of home visits for ``teams`` three-person teams: depots, vehicles and visits.

    Visits stand a few metres (:data:`JITTER_M`) from walkable street nodes, within
    :data:`MAX_VISIT_SPACING_M` of a drivable one when ``network_drive`` is given. Household
    kinds, sizes, windows and notes follow :data:`HOUSEHOLDS` and :data:`WINDOWS`; visits stand
    at nodes of named streets when the network has names (see :func:`street_addresses`). Teams alternate
    between walking (profile ``"walk"``) and a van (``"drive"``, every third team, only with a
    drive network); ``team-1`` is the one with the ``"paediatric"`` skill. Shifts run 08:00-16:00
    with a 30 minute lunch starting 11:30-13:30; capacities are swab ``kits`` (one per person)
    and ``tubes`` (:func:`routing.model.swab_tubes`).
    """
    if visits < 1:
        raise ValueError(f"visits must be >= 1, got {visits}")
    if teams < 1:
        raise ValueError(f"teams must be >= 1, got {teams}")
    rng = np.random.default_rng(seed)
    walk = network_walk.graph
    walk_ids, walk_lonlat = _node_table(walk)
    if not walk_ids:
        raise ValueError("the walk network has no nodes")
    lat0 = float(walk_lonlat[:, 1].mean())
    walk_xy = _metric(walk_lonlat, lat0)

    # Where visits may be: doors on named streets (a walkable node near a drivable one when
    # vans take part); depots at drivable nodes.
    streets = _street_names(walk)
    named = np.array([node in streets for node in walk_ids])
    candidates = np.flatnonzero(named) if named.any() else np.arange(len(walk_ids))
    if network_drive is not None and network_drive.graph.number_of_nodes():
        _, drive_lonlat = _node_table(network_drive.graph)
        gap_m, _ = cKDTree(_metric(drive_lonlat, lat0)).query(walk_xy[candidates])
        near = candidates[gap_m <= MAX_VISIT_SPACING_M]
        candidates = near if near.size else candidates
        depot_lonlat = drive_lonlat
    else:
        depot_lonlat = walk_lonlat

    depots = _depots(depot_lonlat, lat0, 2 if teams >= 4 else 1)
    vehicles = _teams(teams, depots, drive=network_drive is not None)

    # Households: exact quotas per kind and per window, shuffled by the seed.
    kind_counts = _quotas(visits, [h.share for h in HOUSEHOLDS])
    kinds = [h for h, count in zip(HOUSEHOLDS, kind_counts, strict=True) for _ in range(count)]
    kinds = [kinds[i] for i in rng.permutation(visits)]
    options = [*(w for _, w in WINDOWS), ()]
    window_counts = _quotas(visits, [*(share for share, _ in WINDOWS), 1.0 - sum(s for s, _ in WINDOWS)])
    windows = [w for w, count in zip(options, window_counts, strict=True) for _ in range(count)]
    windows = [windows[i] for i in rng.permutation(visits)]

    replace = visits > candidates.size  # more households than doors: some share a building
    nodes = rng.choice(candidates, size=visits, replace=replace)
    distance = rng.uniform(*JITTER_M, size=visits)
    bearing = rng.uniform(0.0, 2 * math.pi, size=visits)
    m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    result: list[Visit] = []
    for i, (household, window) in enumerate(zip(kinds, windows, strict=True)):
        lon, lat = walk_lonlat[nodes[i]]
        lon += distance[i] * math.sin(bearing[i]) / m_per_deg_lon
        lat += distance[i] * math.cos(bearing[i]) / _M_PER_DEG_LAT
        people = int(rng.integers(household.people[0], household.people[1] + 1))
        note = household.notes[int(rng.integers(len(household.notes)))]
        result.append(
            Visit(
                id=f"v-{i + 1:03d}",
                location=(round(float(lon), 7), round(float(lat), 7)),
                people=people,
                setup_s=int(rng.integers(household.setup_s[0] // 60, household.setup_s[1] // 60 + 1)) * 60,
                per_person_s=household.per_person_s,
                time_windows=window,
                priority=household.priority,
                skills=frozenset({household.skill} if household.skill else ()),
                demand={"kits": people, "tubes": swab_tubes(people, pooled=household.pooled)},
                notes=note,
            )
        )
    return depots, vehicles, result


def _depots(lonlat: np.ndarray, lat0: float, count: int) -> list[Depot]:
    """The community health station near the centre; a second post (the street office) north-east."""
    xy = _metric(lonlat, lat0)
    low, high = xy.min(axis=0), xy.max(axis=0)
    targets = [("health-station", low + 0.5 * (high - low)), ("street-office", low + 0.8 * (high - low))]
    depots = []
    for name, target in targets[:count]:
        index = int(np.argmin(((xy - target) ** 2).sum(axis=1)))
        lon, lat = lonlat[index]
        depots.append(Depot(name, (round(float(lon), 7), round(float(lat), 7))))
    return depots


def _teams(count: int, depots: Sequence[Depot], *, drive: bool) -> list[Vehicle]:
    vehicles = []
    for i in range(count):
        by_van = drive and i % 3 == 2
        depot = depots[i % len(depots)].id
        vehicles.append(
            Vehicle(
                id=f"team-{i + 1}",
                start_depot=depot,
                end_depot=depot,
                shift=SHIFT,
                kind=VehicleKind.TEAM,
                capacity=VAN_CAPACITY if by_van else WALK_CAPACITY,
                skills=frozenset({PAEDIATRIC}) if i == 0 else frozenset(),
                profile="drive" if by_van else "walk",
                breaks=(LUNCH,),
            )
        )
    return vehicles


def street_addresses(network_walk: HasGraph, visits: Sequence[Visit]) -> dict[str, str]:
    """An address for each visit: the nearest named street and a house number made up from its id.

    The routing model has no addresses (they travel with the request, see
    ``service.schemas.VisitIn.address``); this gives the generated visits plausible ones.
    Visits with no named street in the network get none.
    """
    streets = _street_names(network_walk.graph)
    if not streets or not visits:
        return {}
    nodes = sorted(streets, key=str)
    lonlat = np.array([[network_walk.graph.nodes[n]["x"], network_walk.graph.nodes[n]["y"]] for n in nodes])
    lat0 = float(lonlat[:, 1].mean())
    points = np.array([v.location for v in visits], dtype=np.float64)
    _, nearest = cKDTree(_metric(lonlat, lat0)).query(_metric(points, lat0))
    return {
        visit.id: f"{streets[nodes[int(k)]]} {zlib.crc32(visit.id.encode()) % 59 + 1}"
        for visit, k in zip(visits, nearest, strict=True)
    }
