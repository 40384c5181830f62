"""Road geometry of trips: the streets a leg follows, as a lon/lat LineString for maps, GeoJSON, GPX.

A leg runs from the point to its road position (the walking leg), along the partial edge, the
fastest path's edges, the partial edge at the far end, and on to the destination point: the same
path :func:`routing.matrix.travel_matrix` costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra
from shapely import LineString
from shapely.ops import substring

from routing.network import RoadNetwork
from routing.snapping import Point, SnappedPoints, as_points, snap_arrays

FRACTION_TOLERANCE = 1e-9
"""Fractions along one edge closer than this are the same road position (as in the matrix)."""


def _pair_index(network: RoadNetwork, u: NDArray[np.intp], v: NDArray[np.intp]) -> NDArray[np.intp]:
    """Pair index of each node step ``u -> v`` (pairs are sorted by ``(u, v)``)."""
    a = network.arrays
    n = len(a.node_ids)
    return np.searchsorted(a.pair_u * n + a.pair_v, u * n + v)


def _leg_coords(
    network: RoadNetwork,
    snapped: SnappedPoints,
    i: int,
    j: int,
    sources: NDArray[np.intp],
    time_s: NDArray[np.float64],
    pred: NDArray[np.int32],
) -> NDArray[np.float64]:
    """Metric coordinates of the fastest leg from point ``i`` to point ``j``."""
    a = network.arrays
    start = shapely.get_coordinates(shapely.points(a.to_metric.transform(*snapped.points[i])))
    end = shapely.get_coordinates(shapely.points(a.to_metric.transform(*snapped.points[j])))
    edge_i = a.pair_geometry_m[snapped.pair[i]]
    edge_j = a.pair_geometry_m[snapped.pair[j]]
    fi, fj = float(snapped.fraction[i]), float(snapped.fraction[j])

    best, choice = np.inf, None
    for x in range(2):
        node_x = snapped.exit_node[i, x]
        if node_x < 0:
            continue
        row = int(np.searchsorted(sources, node_x))
        for y in range(2):
            node_y = snapped.entry_node[j, y]
            if node_y < 0:
                continue
            cost = snapped.exit_s[i, x] + time_s[row, node_y] + snapped.entry_s[j, y]
            if cost < best:
                best, choice = cost, (x, y, row, node_y)
    pieces: list[NDArray[np.float64]] = [start]
    if snapped.pair[i] == snapped.pair[j]:
        edge_s = snapped.exit_s[i, 0] + snapped.entry_s[i, 0]
        back_s = snapped.exit_s[i, 1] + snapped.entry_s[i, 1]  # inf on a one-way street
        if fj >= fi - FRACTION_TOLERANCE:
            along = abs(fj - fi) * edge_s
        else:
            along = (fi - fj) * back_s if np.isfinite(back_s) else np.inf
        if along <= best:
            choice = None
            pieces.append(shapely.get_coordinates(substring(edge_i, fi, fj, normalized=True)))
    if choice is not None:
        x, y, row, node_y = choice
        pieces.append(shapely.get_coordinates(substring(edge_i, fi, 1.0 if x == 0 else 0.0, normalized=True)))
        path = [node_y]
        while pred[row, path[-1]] >= 0:
            path.append(int(pred[row, path[-1]]))
        nodes = np.array(path[::-1], dtype=np.intp)
        pairs = _pair_index(network, nodes[:-1], nodes[1:])
        pieces.extend(shapely.get_coordinates(g) for g in a.pair_geometry_m[pairs])
        pieces.append(shapely.get_coordinates(substring(edge_j, 0.0 if y == 0 else 1.0, fj, normalized=True)))
    pieces.append(end)
    coords = np.concatenate(pieces)
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = (np.diff(coords, axis=0) != 0).any(axis=1)
    return coords[keep]


def _to_lonlat(network: RoadNetwork, coords: NDArray[np.float64]) -> NDArray[np.float64]:
    lon, lat = network.arrays.to_lonlat.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def route_geometry(network: RoadNetwork, points: Sequence[Point], *, max_snap_m: float = 500.0) -> LineString:
    """The streets followed visiting ``points`` (lon, lat) in order, as one lon/lat LineString."""
    array, labels = as_points(points, None)
    if len(array) < 2:
        raise ValueError(f"a route needs at least 2 points, got {len(array)}")
    snapped = snap_arrays(network, array, labels, max_snap_m=max_snap_m)
    exits = snapped.exit_node[:-1]
    sources = np.unique(exits[exits >= 0])
    time_s, pred = dijkstra(network.arrays.csr_time_s, directed=True, indices=sources, return_predecessors=True)
    legs = [_leg_coords(network, snapped, i, i + 1, sources, time_s, pred) for i in range(len(array) - 1)]
    coords = _to_lonlat(network, np.concatenate(legs))
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = (np.diff(coords, axis=0) != 0).any(axis=1)
    coords = coords[keep]
    if len(coords) < 2:  # every point at the same place
        coords = np.repeat(array[:1], 2, axis=0)
    coords[0], coords[-1] = array[0], array[-1]  # exactly the inputs, not a projection round trip
    return LineString(coords)


def leg_geometry(network: RoadNetwork, frm: Point, to: Point, *, max_snap_m: float = 500.0) -> LineString:
    """The streets of the fastest trip from ``frm`` to ``to`` (lon, lat), as a lon/lat LineString."""
    return route_geometry(network, [frm, to], max_snap_m=max_snap_m)
