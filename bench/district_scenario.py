"""A seeded district for the bus benchmark: demand areas, candidate bus stops, home visits, labs.

Shaped by the field (``docs/domain.md``, Zhengzhou 2022): 13 converted city buses with crews of
10 tour villages, residential compounds, schools and factories; schools ask for the 12:00-14:00
green channel, factories for a session at a shift change; 6 joint sampling teams make the home
visits (quarantined and vulnerable residents first); samples go to a few labs and transfer points
in "small batches, many trips".

The district is the part of the road network within ``radius_km`` of its centre. People live in
*clusters* (a village, a compound, a school, a factory), each of one to a few demand areas at
walkable nodes, with 2 or 3 candidate bus stops at drivable nodes nearby; in some clusters two
of the candidates are alternatives (two gates of one compound: at most one is used). Home visits,
teams and their depots come from :func:`routing.scenarios.home_visit_scenario` on the same
district. Everything is deterministic for a seed and a network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from routing.model import (
    BusStop,
    DemandArea,
    Depot,
    Lab,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    VehicleKind,
    Visit,
)
from routing.network import RoadNetwork
from routing.scenarios import HasGraph, home_visit_scenario

H = 3600
BUS_SHIFT = TimeWindow(8 * H, 18 * H)
LAB_OPENING = TimeWindow(7 * H, 22 * H)
GREEN_CHANNEL = TimeWindow(12 * H, 14 * H)
SHIFT_CHANGES = (TimeWindow(11 * H, 13 * H), TimeWindow(14 * H, 16 * H))
"""A factory samples its workers around a shift change (late morning or mid-afternoon)."""

BUS_TUBES = 150
"""Tubes a bus carries before it must drop at a lab (1,500 people pooled 10 to a tube)."""
MAX_DWELL_S = 3 * H
STOP_SETUP_S = 600
BUS_SPEED_FACTOR = 0.8

STOP_NEAR_FOOTWAY_M = 60.0
"""A candidate stop is a drivable node with a footway node this close (people can walk to it)."""
AREA_RADIUS_M = 350.0
"""Areas of a cluster lie within this of its centre."""
STOP_RADIUS_M = 350.0
"""Candidate stops of a cluster lie within this of its centre."""
CLUSTER_SPACING_M = 700.0
"""Preferred distance between cluster centres (relaxed when the district is too small)."""
ALTERNATIVES_SHARE = 0.4
"""Share of clusters whose last two candidate stops are alternatives of each other."""


@dataclass(frozen=True)
class _ClusterKind:
    kind: str
    share: float
    median_people: int
    windows: tuple[tuple[TimeWindow, ...], ...] = ((),)
    polygon_m: float | None = None  # side of the square outline drawn for its areas


# Medians calibrated on domain.md: 13 buses sampled about 13,000 people in the first days of a
# round, so a district day for 13 buses is of the order of 15,000 people (150 areas of ~100),
# with a few large schools and compounds. (Medians 80-250 gave ~40,000, more than 13 buses can
# sample in a day through 2 lanes at 20 s a person: every plan was then bus-time bound.)
CLUSTER_KINDS: tuple[_ClusterKind, ...] = (
    _ClusterKind("village", 0.35, 40),
    _ClusterKind("compound", 0.35, 80, polygon_m=160.0),
    _ClusterKind("school", 0.15, 120, windows=((GREEN_CHANNEL,),), polygon_m=120.0),
    _ClusterKind("factory", 0.15, 100, windows=tuple((w,) for w in SHIFT_CHANGES), polygon_m=200.0),
)
POPULATION = (20, 2000)
"""People per demand area: log-normal around the kind's median (spread :data:`POPULATION_SIGMA`), clipped."""
POPULATION_SIGMA = 0.9

_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class District:
    """Everything but the matrices: build a :class:`Problem` with :meth:`problem`.

    Sites in matrix order are :attr:`sites`: depots, visits, stops, labs.
    """

    depots: tuple[Depot, ...]
    vehicles: tuple[Vehicle, ...]
    visits: tuple[Visit, ...]
    stops: tuple[BusStop, ...]
    areas: tuple[DemandArea, ...]
    labs: tuple[Lab, ...]
    cluster_of: dict[str, str]
    """Area or stop id -> the cluster (e.g. ``"school-07"``) it belongs to."""

    @property
    def sites(self) -> tuple[Depot | Visit | BusStop | Lab, ...]:
        return (*self.depots, *self.visits, *self.stops, *self.labs)

    @property
    def people_total(self) -> int:
        return sum(a.population for a in self.areas)

    def problem(
        self, matrices: dict[str, TravelMatrix], area_walk_m: np.ndarray | None = None, **changes: Any
    ) -> Problem:
        return Problem(
            depots=self.depots,
            vehicles=self.vehicles,
            visits=self.visits,
            stops=self.stops,
            areas=self.areas,
            labs=self.labs,
            matrices=matrices,
            area_walk_m=area_walk_m,
            **changes,
        )


@dataclass(frozen=True)
class _Graph:
    """A subgraph standing in for a network where only ``.graph`` is needed."""

    graph: nx.MultiDiGraph


def _node_table(graph: nx.MultiDiGraph) -> tuple[list[Any], np.ndarray]:
    ids = sorted(graph.nodes, key=str)
    lonlat = np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in ids], dtype=np.float64).reshape(-1, 2)
    return ids, lonlat


class _Frame:
    """Local metres around a latitude: good to a fraction of a percent over a district."""

    def __init__(self, lat0: float) -> None:
        self.scale = np.array([_M_PER_DEG_LAT * math.cos(math.radians(lat0)), _M_PER_DEG_LAT])

    def xy(self, lonlat: np.ndarray) -> np.ndarray:
        return np.asarray(lonlat, dtype=np.float64) * self.scale

    def lonlat(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, dtype=np.float64) / self.scale


def _rounded(lonlat: Sequence[float]) -> tuple[float, float]:
    return (round(float(lonlat[0]), 7), round(float(lonlat[1]), 7))


def _district(graph: nx.MultiDiGraph, centre_xy: np.ndarray, frame: _Frame, radius_m: float | None) -> _Graph:
    if radius_m is None:
        return _Graph(graph)
    ids, lonlat = _node_table(graph)
    inside = np.hypot(*(frame.xy(lonlat) - centre_xy).T) <= radius_m
    return _Graph(graph.subgraph([n for n, keep in zip(ids, inside, strict=True) if keep]).copy())


def _spread(rng: np.random.Generator, xy: np.ndarray, count: int, spacing_m: float) -> list[int]:
    """``count`` indices of ``xy`` in random order, each at least ``spacing_m`` from the others
    (the spacing halves until enough fit)."""
    order = rng.permutation(len(xy))
    while True:
        chosen: list[int] = []
        for i in order:
            if all(np.hypot(*(xy[i] - xy[j])) >= spacing_m for j in chosen):
                chosen.append(int(i))
                if len(chosen) == count:
                    return chosen
        if spacing_m < 1.0:
            raise ValueError(f"the district has room for only {len(chosen)} clusters, {count} needed")
        spacing_m /= 2


def district_scenario(
    drive: RoadNetwork | HasGraph,
    walk: RoadNetwork | HasGraph,
    *,
    buses: int = 13,
    teams: int = 6,
    areas: int = 150,
    stops: int = 120,
    visits: int = 300,
    labs: int = 3,
    seed: int = 1,
    radius_km: float | None = 6.0,
    clusters: int | None = None,
) -> District:
    """A district's day: ``areas`` demand areas in ``clusters`` clusters (default: as many as
    give 2 or 3 candidate stops each), ``stops`` candidate bus stops spread evenly over them,
    ``visits`` home visits for ``teams`` teams, ``buses`` buses and ``labs`` labs.

    Populations are 50-2000 per area (most one or a few hundred); schools have the 12:00-14:00 green
    channel, factories a shift-change window; stops allow 3 hours' stay at most. Buses: drive
    profile at 80 % of road speeds, 2 lanes at 20 s a person, 150 tubes between lab drops,
    08:00-18:00 from the bus depot. Teams and home visits: :func:`home_visit_scenario`. Labs and
    transfer points open 07:00-22:00, the first at the health station.
    """
    for name, value, low in (("buses", buses, 1), ("teams", teams, 1), ("areas", areas, 1),
                             ("stops", stops, 2), ("visits", visits, 1), ("labs", labs, 1)):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    rng = np.random.default_rng(seed)
    drive_ids, drive_lonlat = _node_table(drive.graph)
    if not drive_ids:
        raise ValueError("the drive network has no nodes")
    frame = _Frame(float(np.median(drive_lonlat[:, 1])))
    drive_xy = frame.xy(drive_lonlat)
    centre = drive_xy[int(np.argmin(np.hypot(*(drive_xy - np.median(drive_xy, axis=0)).T)))]
    radius_m = None if not radius_km else radius_km * 1000.0
    district_drive = _district(drive.graph, centre, frame, radius_m)
    district_walk = _district(walk.graph, centre, frame, radius_m)
    drive_ids, drive_lonlat = _node_table(district_drive.graph)
    walk_ids, walk_lonlat = _node_table(district_walk.graph)
    if not drive_ids or not walk_ids:
        raise ValueError(f"no roads or footways within {radius_km} km of the network's centre")
    drive_xy, walk_xy = frame.xy(drive_lonlat), frame.xy(walk_lonlat)
    walk_tree = cKDTree(walk_xy)

    # Stops where people can walk to; cluster centres among them.
    gap, _ = walk_tree.query(drive_xy)
    stop_pool = np.flatnonzero(gap <= STOP_NEAR_FOOTWAY_M)
    if stop_pool.size < stops:
        raise ValueError(f"only {stop_pool.size} drivable nodes near footways for {stops} stops: lower --stops")
    pool_xy = drive_xy[stop_pool]
    if clusters is None:
        clusters = min(max(math.ceil(stops / 3), round(stops / 2.4)), stops // 2, areas)
        clusters = max(clusters, math.ceil(stops / 3))
    elif not 1 <= clusters <= min(stops // 2, areas):
        raise ValueError(f"clusters must lie in 1..{min(stops // 2, areas)} (2 stops and 1 area each), got {clusters}")
    centres = [int(stop_pool[i]) for i in _spread(rng, pool_xy, clusters, CLUSTER_SPACING_M)]
    stop_counts = [stops // clusters] * clusters
    for i in rng.choice(clusters, size=stops - sum(stop_counts), replace=False):
        stop_counts[int(i)] += 1
    area_counts = [areas // clusters] * clusters
    for i in rng.choice(clusters, size=areas - sum(area_counts), replace=False):
        area_counts[int(i)] += 1
    shares = np.array([k.share for k in CLUSTER_KINDS])
    kinds = [CLUSTER_KINDS[int(i)] for i in rng.choice(len(CLUSTER_KINDS), size=clusters, p=shares / shares.sum())]

    pool_tree = cKDTree(pool_xy)
    used_stop_nodes: set[int] = set()
    used_area_nodes: set[int] = set()
    stop_list: list[BusStop] = []
    area_list: list[DemandArea] = []
    cluster_of: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for c, (centre_node, kind) in enumerate(zip(centres, kinds, strict=True)):
        numbers[kind.kind] = numbers.get(kind.kind, 0) + 1
        name = f"{kind.kind}-{numbers[kind.kind]:02d}"
        here = drive_xy[centre_node]
        # Candidate stops: the centre, then others nearby (nearest first when few are free).
        near = [int(stop_pool[i]) for i in pool_tree.query_ball_point(here, STOP_RADIUS_M)]
        near = [n for n in near if n not in used_stop_nodes and n != centre_node]
        near = [near[i] for i in rng.permutation(len(near))]
        if len(near) < stop_counts[c] - 1:
            _, order = pool_tree.query(here, k=min(len(stop_pool), stops + 10))
            near += [int(stop_pool[i]) for i in np.atleast_1d(order)
                     if int(stop_pool[i]) not in used_stop_nodes and int(stop_pool[i]) not in near
                     and int(stop_pool[i]) != centre_node]
        nodes = [centre_node, *near[: stop_counts[c] - 1]]
        windows = kind.windows[int(rng.integers(len(kind.windows)))]
        grouped = len(nodes) >= 2 and rng.random() < ALTERNATIVES_SHARE
        for k, node in enumerate(nodes):
            used_stop_nodes.add(node)
            stop_id = f"{name}-{chr(ord('a') + k)}"
            stop_list.append(
                BusStop(
                    id=stop_id,
                    location=_rounded(drive_lonlat[node]),
                    time_windows=windows,
                    group=f"{name}-gates" if grouped and k >= len(nodes) - 2 else None,
                    max_dwell_s=MAX_DWELL_S,
                    setup_s=STOP_SETUP_S,
                    notes=f"{kind.kind} {name}",
                )
            )
            cluster_of[stop_id] = name
        # Areas: free footway nodes around the centre.
        candidates = [n for n in walk_tree.query_ball_point(here, AREA_RADIUS_M) if n not in used_area_nodes]
        if len(candidates) < area_counts[c]:
            _, order = walk_tree.query(here, k=min(len(walk_ids), area_counts[c] + len(used_area_nodes) + 1))
            candidates += [int(n) for n in np.atleast_1d(order) if int(n) not in used_area_nodes
                           and int(n) not in candidates]
        picked = [int(candidates[i]) for i in rng.permutation(len(candidates))[: area_counts[c]]]
        for k, node in enumerate(picked):
            used_area_nodes.add(node)
            # Skewed: most areas a hundred or a few hundred people, a few near the top of the range.
            people = kind.median_people * math.exp(POPULATION_SIGMA * float(rng.standard_normal()))
            population = int(min(max(round(people), POPULATION[0]), POPULATION[1]))
            location = _rounded(walk_lonlat[node])
            polygon = None
            if kind.polygon_m is not None:
                half = kind.polygon_m / 2
                corners = frame.xy(np.array(location)) + np.array([[-half, -half], [half, -half], [half, half],
                                                                    [-half, half]])
                polygon = tuple(_rounded(p) for p in frame.lonlat(corners))
            area_id = f"{name}-{k + 1}"
            area_list.append(DemandArea(area_id, location, population, polygon=polygon))
            cluster_of[area_id] = name

    # Home visits, teams and their depots; the buses' own depot; labs.
    depots, team_list, visit_list = home_visit_scenario(
        district_walk, district_drive, visits=visits, teams=teams, seed=seed
    )
    bus_node = int(np.argmin(np.hypot(*(drive_xy - (centre + np.array([-800.0, -600.0]))).T)))
    bus_depot = Depot("bus-depot", _rounded(drive_lonlat[bus_node]))
    bus_list = [
        Vehicle(
            id=f"bus-{i + 1:02d}",
            start_depot=bus_depot.id,
            end_depot=bus_depot.id,
            shift=BUS_SHIFT,
            kind=VehicleKind.BUS,
            capacity={"tubes": BUS_TUBES},
            profile="drive",
            speed_factor=BUS_SPEED_FACTOR,
            lanes=2,
            seconds_per_person=20,
        )
        for i in range(buses)
    ]
    lab_nodes = [int(np.argmin(np.hypot(*(drive_xy - frame.xy(np.array(depots[0].location))).T)))]
    pool_dist = np.hypot(*(pool_xy - drive_xy[lab_nodes[0]]).T)
    while len(lab_nodes) < labs:
        # Transfer points far from the others, so every part of the district has one nearby.
        far = int(np.argmax(pool_dist))
        lab_nodes.append(int(stop_pool[far]))
        pool_dist = np.minimum(pool_dist, np.hypot(*(pool_xy - drive_xy[lab_nodes[-1]]).T))
    lab_list = [
        Lab("lab-central" if i == 0 else f"transfer-{i}", _rounded(drive_lonlat[node]), opening=(LAB_OPENING,))
        for i, node in enumerate(lab_nodes)
    ]
    return District(
        depots=(bus_depot, *depots),
        vehicles=(*bus_list, *team_list),
        visits=tuple(visit_list),
        stops=tuple(stop_list),
        areas=tuple(area_list),
        labs=tuple(lab_list),
        cluster_of=cluster_of,
    )
