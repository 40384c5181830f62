"""Travel matrices: snapping, exactness against networkx, direction, errors, caches, geometry."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely

from routing import matrix as matrix_module
from routing.errors import ProblemError, SnapError
from routing.matrix import (
    MatrixCache,
    MatrixProvider,
    OsmnxMatrixProvider,
    leg_geometry,
    route_geometry,
    snap_points,
    travel_matrix,
)
from routing.network import RoadNetwork
from routing.profiles import WALK_KPH

Point = tuple[float, float]


def on_edge(network: RoadNetwork, pair: int, fraction: float, offset_m: float = 0.0) -> Point:
    """The (lon, lat) at ``fraction`` along a network edge, ``offset_m`` metres north of it."""
    a = network.arrays
    x, y = shapely.get_coordinates(
        shapely.line_interpolate_point(a.pair_geometry_m[pair], fraction, normalized=True)
    )[0]
    lon, lat = a.to_lonlat.transform(x, y + offset_m)
    return (float(lon), float(lat))


def random_points(network: RoadNetwork, count: int, seed: int) -> list[Point]:
    """Points a few metres off random nodes, as addresses sit beside the street."""
    a = network.arrays
    rng = np.random.default_rng(seed)
    nodes = rng.choice(len(a.lon), count, replace=False)
    jitter = rng.normal(0.0, 3e-5, (count, 2))  # about 3 m
    return [(float(a.lon[n] + dx), float(a.lat[n] + dy)) for n, (dx, dy) in zip(nodes, jitter, strict=True)]


def reference_durations(network: RoadNetwork, points: list[Point]) -> tuple[np.ndarray, np.ndarray]:
    """Durations (s) and distances (m) by networkx on the graph with each point inserted as a node.

    Independent of the matrix code: the point splits its edge u -> v (and v -> u if the street is
    two-way) into two, Dijkstra runs from the point's node, and the walks to the road are added.
    Needs each point on its own edge.
    """
    snaps = snap_points(network, points)
    graph = nx.DiGraph()
    for u, v, data in network.graph.edges(data=True):
        cost = (data["travel_time"], data["length"])
        if not graph.has_edge(u, v) or cost < (graph[u][v]["travel_time"], graph[u][v]["length"]):
            graph.add_edge(u, v, travel_time=cost[0], length=cost[1])
    for i, snap in enumerate(snaps):
        forward = graph[snap.u][snap.v]
        f = snap.fraction
        graph.add_edge(snap.u, ("p", i), travel_time=f * forward["travel_time"], length=f * forward["length"])
        graph.add_edge(("p", i), snap.v, travel_time=(1 - f) * forward["travel_time"],
                       length=(1 - f) * forward["length"])
        if graph.has_edge(snap.v, snap.u):
            back = graph[snap.v][snap.u]
            graph.add_edge(snap.v, ("p", i), travel_time=(1 - f) * back["travel_time"],
                           length=(1 - f) * back["length"])
            graph.add_edge(("p", i), snap.u, travel_time=f * back["travel_time"], length=f * back["length"])
    walk_s = np.array([s.distance_m for s in snaps]) / (WALK_KPH / 3.6)
    walk_m = np.array([s.distance_m for s in snaps])
    n = len(points)
    durations, distances = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        times, paths = nx.single_source_dijkstra(graph, ("p", i), weight="travel_time")
        for j in range(n):
            if i != j:
                path = paths[("p", j)]
                length = sum(graph[a][b]["length"] for a, b in itertools.pairwise(path))
                durations[i, j] = walk_s[i] + times[("p", j)] + walk_s[j]
                distances[i, j] = walk_m[i] + length + walk_m[j]
    return durations, distances


def test_matrix_equals_networkx_with_points_inserted(aguascalientes_drive: RoadNetwork) -> None:
    points = random_points(aguascalientes_drive, 40, seed=3)
    pairs = [s.u * 10**12 + s.v for s in snap_points(aguascalientes_drive, points)]
    keep = [i for i, p in enumerate(pairs) if pairs.count(p) == 1]  # one point per edge
    points = [points[i] for i in keep]
    matrix = travel_matrix(aguascalientes_drive, points)
    durations, distances = reference_durations(aguascalientes_drive, points)
    assert np.abs(matrix.durations_s - durations).max() < 1e-6
    # Distance is the length of the fastest path, not the shortest distance.
    assert np.abs(matrix.distances_m - distances).max() < 1e-6


def test_one_way_street_gives_asymmetric_times(aguascalientes_drive: RoadNetwork) -> None:
    a = aguascalientes_drive.arrays
    one_way = np.flatnonzero((a.pair_reverse < 0) & (a.pair_length_m > 150))[0]
    along = [on_edge(aguascalientes_drive, one_way, 0.25), on_edge(aguascalientes_drive, one_way, 0.75)]
    matrix = travel_matrix(aguascalientes_drive, along)
    assert matrix.durations_s[0, 1] == pytest.approx(0.5 * a.pair_time_s[one_way], abs=0.1)
    assert matrix.durations_s[1, 0] > matrix.durations_s[0, 1] + 5  # round the block
    assert matrix.distances_m[1, 0] > matrix.distances_m[0, 1]


def test_same_points_cost_nothing_and_walking_to_the_road_counts(aguascalientes_drive: RoadNetwork) -> None:
    a = aguascalientes_drive.arrays
    pair = int(np.argmax(a.pair_length_m))
    door = on_edge(aguascalientes_drive, pair, 0.5, offset_m=30.0)
    (snap,) = snap_points(aguascalientes_drive, [door], ids=["v-1"])
    assert snap.id == "v-1" and 10.0 < snap.distance_m <= 30.0
    assert 0.05 < snap.fraction < 0.95  # on the edge, not at a node
    matrix = travel_matrix(aguascalientes_drive, [door, door, snap.road_point])
    assert matrix.durations_s[0, 1] == 0.0 and np.all(np.diag(matrix.durations_s) == 0.0)
    assert matrix.durations_s[0, 2] == pytest.approx(snap.distance_m / (WALK_KPH / 3.6), rel=1e-3)
    assert matrix.distances_m[2, 0] == pytest.approx(snap.distance_m, rel=1e-3)


def test_walking_is_slower_than_driving_on_the_same_pair(
    aguascalientes_drive: RoadNetwork, aguascalientes_walk: RoadNetwork
) -> None:
    west, south, east, north = aguascalientes_drive.bounds
    pair = [(west + 0.3 * (east - west), (south + north) / 2), (west + 0.7 * (east - west), (south + north) / 2)]
    drive = travel_matrix(aguascalientes_drive, pair)
    walk = travel_matrix(aguascalientes_walk, pair)
    assert walk.durations_s[0, 1] > 3 * drive.durations_s[0, 1]
    assert walk.durations_s[0, 1] == pytest.approx(walk.durations_s[1, 0], rel=1e-9)  # no one-ways on foot


def test_far_point_raises_snap_error_naming_it(aguascalientes_drive: RoadNetwork) -> None:
    west, south, east, north = aguascalientes_drive.bounds
    inside = ((west + east) / 2, (south + north) / 2)
    far = (east + 0.05, north)  # about 5 km east of the network
    with pytest.raises(SnapError, match=r'^Point "v-17" is \d+ m from the nearest drive road \(limit 500 m\)$') as e:
        travel_matrix(aguascalientes_drive, [inside, far], ids=["depot", "v-17"])
    assert e.value.path == ("v-17",)
    matrix = travel_matrix(aguascalientes_drive, [inside, far], max_snap_m=20_000)
    assert np.isfinite(matrix.durations_s).all()


@pytest.mark.parametrize(
    ("points", "ids", "message"),
    [
        ([(200.0, 21.87)], None, r"Point #0: \(200.0, 21.87\) is not a \(lon, lat\) pair"),  # lon out of range
        ([(float("nan"), 21.87)], ["v-1"], r'Point "v-1": \(nan, 21.87\)'),
        ([(-102.27, 21.87)], ["a", "b"], "got 1 points but 2 ids"),
    ],
)
def test_bad_points_raise_problem_errors(
    aguascalientes_drive: RoadNetwork, points: list[Point], ids: list[str] | None, message: str
) -> None:
    with pytest.raises(ProblemError, match=message):
        travel_matrix(aguascalientes_drive, points, ids=ids)


def test_empty_and_single_point_matrices(aguascalientes_drive: RoadNetwork) -> None:
    assert travel_matrix(aguascalientes_drive, []).size == 0
    west, south, east, north = aguascalientes_drive.bounds
    assert travel_matrix(aguascalientes_drive, [((west + east) / 2, (south + north) / 2)]).durations_s[0, 0] == 0


# --- caches -----------------------------------------------------------------------------------


def forbid_dijkstra(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed a cached matrix")

    monkeypatch.setattr(matrix_module, "fastest_paths", fail)


def test_identical_request_is_served_from_memory_then_disk(
    aguascalientes_drive: RoadNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = random_points(aguascalientes_drive, 30, seed=5)
    cache = MatrixCache(tmp_path)
    first = travel_matrix(aguascalientes_drive, points, cache=cache)
    forbid_dijkstra(monkeypatch)
    assert travel_matrix(aguascalientes_drive, points, cache=cache) is first
    from_disk = travel_matrix(aguascalientes_drive, points, cache=MatrixCache(tmp_path))  # a restart
    np.testing.assert_array_equal(from_disk.durations_s, first.durations_s)
    np.testing.assert_array_equal(from_disk.distances_m, first.distances_m)
    with pytest.raises(AssertionError, match="recomputed"):
        travel_matrix(aguascalientes_drive, points[:-1], cache=cache)  # other points: another key


def test_memory_cache_keeps_the_most_recent_items(aguascalientes_drive: RoadNetwork) -> None:
    points = random_points(aguascalientes_drive, 6, seed=1)
    cache = MatrixCache(max_items=2)
    for k in range(2, 6):
        travel_matrix(aguascalientes_drive, points[:k], cache=cache)
    assert len(cache) == 2


# --- geometry and the provider ----------------------------------------------------------------


def test_leg_geometry_follows_the_streets_of_the_matrix_path(aguascalientes_drive: RoadNetwork) -> None:
    frm, to = random_points(aguascalientes_drive, 2, seed=11)
    line = leg_geometry(aguascalientes_drive, frm, to)
    assert line.coords[0] == frm and line.coords[-1] == to
    length_m = shapely.length(shapely.transform(line, aguascalientes_drive._metric_xy))
    distance_m = travel_matrix(aguascalientes_drive, [frm, to]).distances_m[0, 1]
    assert length_m == pytest.approx(distance_m, rel=0.01)


def test_route_geometry_visits_every_point_in_order(aguascalientes_drive: RoadNetwork) -> None:
    points = random_points(aguascalientes_drive, 4, seed=2)
    line = route_geometry(aguascalientes_drive, points)
    along = [line.project(shapely.Point(p)) for p in points]
    assert along == sorted(along) and all(line.distance(shapely.Point(p)) < 1e-9 for p in points)


def test_osmnx_provider_implements_the_matrix_provider_interface(aguascalientes_drive: RoadNetwork) -> None:
    provider: MatrixProvider = OsmnxMatrixProvider(aguascalientes_drive, MatrixCache())
    points = random_points(aguascalientes_drive, 3, seed=4)
    matrix = provider.matrix(points, ids=["a", "b", "c"])
    assert matrix.size == 3 and matrix.durations_s[0, 1] > 0
    assert provider.geometry(points).coords[0] == points[0]
