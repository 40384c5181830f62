"""Snapping points to the nearest road edge of a network.

A point snaps to the nearest *edge* (not node): it is projected onto the edge's geometry in the
network's UTM CRS, and sits at fraction ``f`` along ``u -> v``. From there it can drive on to
``v`` (``(1 - f)`` of the edge) or, if the street is two-way, back to ``u`` over the reverse edge
(``f`` of it); it is reached the other way round. The metres from the point to the road are a
walking leg at :data:`routing.profiles.WALK_KPH`, added to the time and distance of each trip.

Everything is vectorised: one STRtree query over all edge geometries for all points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from routing.errors import ProblemError, SnapError
from routing.network import RoadNetwork
from routing.profiles import WALK_KPH

Point = tuple[float, float]

WALK_M_PER_S = WALK_KPH / 3.6


@dataclass(frozen=True)
class Snap:
    """Where a point meets its profile's road network.

    ``u -> v`` is the edge (OSM node ids) the point snapped to, ``fraction`` how far along it
    the nearest road position ``road_point`` (lon, lat) lies, ``node`` the nearer of ``u`` and
    ``v`` along the edge, ``distance_m`` the metres from the point to the road.
    """

    id: str | int
    point: Point
    u: int
    v: int
    node: int
    fraction: float
    road_point: Point
    distance_m: float


@dataclass(frozen=True)
class SnappedPoints:
    """Snaps as arrays, one entry per point, for the matrix code.

    ``pair`` is the index into the network's ``GraphArrays.pair_*`` arrays; exits are the nodes
    a point can leave by, entries the nodes it can be reached from, each with the partial edge's
    time (s) and length (m), ``inf`` where there is no such option (one-way street). The walk
    to the road is in ``walk_s``/``walk_m``.
    """

    points: NDArray[np.float64]  # (n, 2) lon, lat
    pair: NDArray[np.intp]
    fraction: NDArray[np.float64]
    distance_m: NDArray[np.float64]
    road_xy_m: NDArray[np.float64]  # (n, 2) in the network's metric CRS
    exit_node: NDArray[np.intp]  # (n, 2): v by the edge, u by the reverse edge (-1: none)
    exit_s: NDArray[np.float64]
    exit_m: NDArray[np.float64]
    entry_node: NDArray[np.intp]  # (n, 2): u by the edge, v by the reverse edge (-1: none)
    entry_s: NDArray[np.float64]
    entry_m: NDArray[np.float64]

    @property
    def walk_s(self) -> NDArray[np.float64]:
        return self.distance_m / WALK_M_PER_S

    @property
    def walk_m(self) -> NDArray[np.float64]:
        return self.distance_m


def as_points(points: Sequence[Point], ids: Sequence[str] | None) -> tuple[NDArray[np.float64], list[str | int]]:
    """Points as an (n, 2) float array and their ids (positions when no ids are given)."""
    labels: list[str | int] = list(ids) if ids is not None else list(range(len(points)))
    if len(labels) != len(points):
        raise ProblemError(f"got {len(points)} points but {len(labels)} ids", path=("ids",))
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    bad = ~(np.isfinite(array).all(axis=1) & (np.abs(array[:, 0]) <= 180) & (np.abs(array[:, 1]) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ProblemError(
            f"Point {_name(labels[i])}: ({array[i, 0]}, {array[i, 1]}) is not a (lon, lat) pair in degrees",
            path=(labels[i],),
        )
    return array, labels


def _name(label: str | int) -> str:
    return f'"{label}"' if isinstance(label, str) else f"#{label}"


def snap_arrays(
    network: RoadNetwork,
    points: NDArray[np.float64],
    labels: Sequence[str | int],
    *,
    max_snap_m: float = 500.0,
) -> SnappedPoints:
    """Snap an (n, 2) lon/lat array; raise :class:`SnapError` for the first point too far from a road."""
    a = network.arrays
    x, y = a.to_metric.transform(points[:, 0], points[:, 1])
    xy = np.column_stack([x, y])
    geoms = shapely.points(xy)
    if len(points):
        (_, pair), distance_m = network.snap_tree.query_nearest(geoms, return_distance=True, all_matches=False)
    else:
        pair, distance_m = np.zeros(0, dtype=np.intp), np.zeros(0)
    far = distance_m > max_snap_m
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise SnapError(
            f"Point {_name(labels[i])} is {distance_m[i]:.0f} m from the nearest {network.profile} road "
            f"(limit {max_snap_m:.0f} m)",
            path=(labels[i],),
        )
    pair = pair.astype(np.intp)
    lines = a.pair_geometry_m[pair]
    fraction = shapely.line_locate_point(lines, geoms, normalized=True) if len(pair) else np.zeros(0)
    fraction = np.nan_to_num(fraction, nan=0.0)  # zero-length geometry: at u
    road_xy = shapely.get_coordinates(shapely.line_interpolate_point(lines, fraction, normalized=True))
    # A two-way street is two edges over one geometry: name each street by the lower pair index,
    # so two points on it always share a pair (the matrix code handles trips along one edge).
    reverse = a.pair_reverse[pair]
    flip = (reverse >= 0) & (reverse < pair)
    pair = np.where(flip, reverse, pair)
    fraction = np.where(flip, 1.0 - fraction, fraction)
    reverse = a.pair_reverse[pair]
    has_reverse = reverse >= 0
    t, m = a.pair_time_s[pair], a.pair_length_m[pair]
    rt = a.pair_time_s[reverse]  # garbage where there is no reverse edge: masked below
    rm = a.pair_length_m[reverse]
    u, v = a.pair_u[pair], a.pair_v[pair]
    no = np.full(len(pair), -1, dtype=np.intp)
    return SnappedPoints(
        points=points,
        pair=pair,
        fraction=fraction,
        distance_m=distance_m,
        road_xy_m=road_xy.reshape(-1, 2),
        exit_node=np.column_stack([v, np.where(has_reverse, u, no)]),
        exit_s=np.column_stack([(1 - fraction) * t, np.where(has_reverse, fraction * rt, np.inf)]),
        exit_m=np.column_stack([(1 - fraction) * m, np.where(has_reverse, fraction * rm, np.inf)]),
        entry_node=np.column_stack([u, np.where(has_reverse, v, no)]),
        entry_s=np.column_stack([fraction * t, np.where(has_reverse, (1 - fraction) * rt, np.inf)]),
        entry_m=np.column_stack([fraction * m, np.where(has_reverse, (1 - fraction) * rm, np.inf)]),
    )


def snap_points(
    network: RoadNetwork,
    points: Sequence[Point],
    *,
    ids: Sequence[str] | None = None,
    max_snap_m: float = 500.0,
) -> list[Snap]:
    """Snap each ``(lon, lat)`` point to its nearest road edge of ``network``.

    Raises :class:`SnapError` naming the point (by id) when it is farther than ``max_snap_m``
    metres from every road; its ``path`` is ``(id,)``.
    """
    array, labels = as_points(points, ids)
    snapped = snap_arrays(network, array, labels, max_snap_m=max_snap_m)
    a = network.arrays
    road_lon, road_lat = a.to_lonlat.transform(snapped.road_xy_m[:, 0], snapped.road_xy_m[:, 1])
    u = a.node_ids[a.pair_u[snapped.pair]]
    v = a.node_ids[a.pair_v[snapped.pair]]
    return [
        Snap(
            id=labels[i],
            point=(float(array[i, 0]), float(array[i, 1])),
            u=int(u[i]),
            v=int(v[i]),
            node=int(u[i] if snapped.fraction[i] <= 0.5 else v[i]),
            fraction=float(snapped.fraction[i]),
            road_point=(float(road_lon[i]), float(road_lat[i])),
            distance_m=float(snapped.distance_m[i]),
        )
        for i in range(len(labels))
    ]
