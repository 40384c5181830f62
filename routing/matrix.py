"""Travel matrices over a road network: durations (s) and distances (m) between points.

``travel_matrix(network, points)`` snaps each point to its nearest road edge
(:mod:`routing.snapping`), runs a Dijkstra (:mod:`routing.fastest_paths`) from every distinct
node a point can leave by to every node a point can be reached from, and combines node-to-node costs with the
partial edges and the walking legs to and from the road:

    duration[i, j] = walk_i + min over exits x of i, entries y of j of
                     exit_i(x) + T[x, y] + entry_j(y) + walk_j

(or the direct trip along the edge when ``i`` and ``j`` sit on the same one). Directed, never
symmetrised; ``inf`` where there is no path; ``0`` between a point and itself (or an identical
point).

**Distance** is the length of the *fastest* path, not the shortest distance: it is what the
vehicle actually drives (among equally fast paths, the shortest). The same search finds both.

Memory is bounded by running sources in chunks. Identical requests (same network content,
points and snap limit) are served from :class:`MatrixCache` without recomputing.

:class:`MatrixProvider` is the interface the rest of Doorstep uses; :class:`OsmnxMatrixProvider`
is this module's implementation. Another engine (OSRM, Valhalla) is another module with a class
implementing the same two methods.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from shapely import LineString

from routing.fastest_paths import fastest_paths
from routing.geometry import leg_geometry, route_geometry
from routing.model import TravelMatrix
from routing.network import RoadNetwork
from routing.snapping import Point, Snap, SnappedPoints, as_points, snap_arrays, snap_points

__all__ = [
    "MatrixCache",
    "MatrixProvider",
    "OsmnxMatrixProvider",
    "Snap",
    "leg_geometry",
    "matrix_from_snaps",
    "route_geometry",
    "snap_points",
    "travel_matrix",
]

MATRIX_VERSION = "2"
"""Part of every cache key: bump when the way matrices are computed changes."""

CHUNK_BYTES = 32 * 2**20
"""Working memory for one chunk of sources' node-to-node rows (times and distances)."""

ROW_CHUNK = 512
"""Points combined per step when assembling the point-to-point matrix."""

FRACTION_TOLERANCE = 1e-9
"""Fractions along one edge closer than this are the same road position."""


def to_points(
    snapped: SnappedPoints,
    time_s: NDArray[np.float64],
    length_m: NDArray[np.float64],
    columns: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """From node-to-node rows (sources x the sorted node positions ``columns``, default all
    nodes) to node-to-point costs (sources x points).

    Each point is reached by the cheaper of its entries (over its edge from ``u``, or over the
    reverse edge from ``v``); the distance follows the chosen entry. ``columns`` must hold every
    entry node.
    """
    entry = np.where(snapped.entry_node >= 0, snapped.entry_node, 0)  # no entry: inf cost below
    if columns is not None:
        entry = np.searchsorted(columns, entry).clip(max=len(columns) - 1)
    best_s = time_s[:, entry[:, 0]] + snapped.entry_s[:, 0]
    best_m = length_m[:, entry[:, 0]] + snapped.entry_m[:, 0]
    other_s = time_s[:, entry[:, 1]] + snapped.entry_s[:, 1]
    better = other_s < best_s
    np.copyto(best_s, other_s, where=better)
    np.copyto(best_m, length_m[:, entry[:, 1]] + snapped.entry_m[:, 1], where=better)
    return best_s, best_m


def source_costs(
    network: RoadNetwork, snapped: SnappedPoints, sources: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fastest time (s) and its length (m) from each source node (position) to each point."""
    targets = np.unique(snapped.entry_node[snapped.entry_node >= 0])
    times = np.empty((len(sources), len(snapped.pair)))
    lengths = np.empty_like(times)
    # Node-to-node rows take sources x targets x 16 bytes: bounded by chunks of sources.
    chunk = max(64, CHUNK_BYTES // (max(1, len(targets)) * 16))
    for start in range(0, len(sources), chunk):
        rows = slice(start, start + chunk)
        time_s, length_m = fastest_paths(network.arrays, sources[rows], targets)
        times[rows], lengths[rows] = to_points(snapped, time_s, length_m, targets)
    return times, lengths


def assemble(
    snapped: SnappedPoints,
    sources: NDArray[np.intp],
    times: NDArray[np.float64],
    lengths: NDArray[np.float64],
    rows: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Point-to-point durations (s) and distances (m) for ``rows`` (default: all) to all points.

    ``times``/``lengths`` are source-node-to-point costs (:func:`source_costs`) from the sorted
    unique ``sources``, which must cover the rows' exit nodes.
    """
    rows = np.arange(len(snapped.pair)) if rows is None else rows
    n = len(snapped.pair)
    # An extra inf row stands for "no such exit" (one-way street).
    time_ext = np.vstack([times, np.full((1, n), np.inf)])
    length_ext = np.vstack([lengths, np.full((1, n), np.inf)])
    exit_at = np.where(snapped.exit_node >= 0, np.searchsorted(sources, snapped.exit_node), len(sources))
    _, place = np.unique(snapped.points, axis=0, return_inverse=True)  # equal points, equal place
    place = place.ravel()
    durations = np.empty((len(rows), n))
    distances = np.empty((len(rows), n))
    for start in range(0, len(rows), ROW_CHUNK):
        r = rows[start : start + ROW_CHUNK]
        best_s = time_ext[exit_at[r, 0]] + snapped.exit_s[r, 0][:, None]
        best_m = length_ext[exit_at[r, 0]] + snapped.exit_m[r, 0][:, None]
        other_s = time_ext[exit_at[r, 1]] + snapped.exit_s[r, 1][:, None]
        better = other_s < best_s
        np.copyto(best_s, other_s, where=better)
        np.copyto(best_m, length_ext[exit_at[r, 1]] + snapped.exit_m[r, 1][:, None], where=better)
        _along_one_edge(snapped, r, best_s, best_m)
        # In place, one operand at a time: temporaries of n x n cost more than the arithmetic.
        best_s += snapped.walk_s[r][:, None]
        best_s += snapped.walk_s[None, :]
        best_m += snapped.walk_m[r][:, None]
        best_m += snapped.walk_m[None, :]
        np.copyto(best_m, np.inf, where=np.isinf(best_s))
        same = place[r][:, None] == place[None, :]
        best_s[same] = 0.0
        best_m[same] = 0.0
        durations[start : start + len(r)] = best_s
        distances[start : start + len(r)] = best_m
    return durations, distances


def _along_one_edge(
    snapped: SnappedPoints, r: NDArray[np.intp], best_s: NDArray[np.float64], best_m: NDArray[np.float64]
) -> None:
    """Where two points sit on the same edge, the trip along it (no node visited) may be fastest."""
    i, j = np.nonzero(snapped.pair[r][:, None] == snapped.pair[None, :])
    if not len(i):
        return
    fi, fj = snapped.fraction[r][i], snapped.fraction[j]
    ri = r[i]
    # Edge time = the exit towards v plus the entry from u: (1 - f) t + f t.
    edge_s = snapped.exit_s[ri, 0] + snapped.entry_s[ri, 0]
    edge_m = snapped.exit_m[ri, 0] + snapped.entry_m[ri, 0]
    back_s = snapped.exit_s[ri, 1] + snapped.entry_s[ri, 1]  # inf on a one-way street
    back_m = snapped.exit_m[ri, 1] + snapped.entry_m[ri, 1]
    # Within rounding of each other counts as forward: two points projected to the same road
    # position must not drive round the block on a one-way street.
    forward = fj >= fi - FRACTION_TOLERANCE
    one_way = np.isinf(back_s)
    # 0 * inf would be NaN: give one-way streets a finite stand-in, then rule the trip out.
    t = np.where(forward, np.abs(fj - fi) * edge_s, (fi - fj) * np.where(one_way, 0.0, back_s))
    m = np.where(forward, np.abs(fj - fi) * edge_m, (fi - fj) * np.where(one_way, 0.0, back_m))
    t[~forward & one_way] = np.inf
    better = t < best_s[i, j]
    best_s[i[better], j[better]] = t[better]
    best_m[i[better], j[better]] = m[better]


def matrix_from_snaps(network: RoadNetwork, snapped: SnappedPoints) -> TravelMatrix:
    """The travel matrix of already snapped points (no cache): Dijkstra from each distinct exit node."""
    sources = np.unique(snapped.exit_node[snapped.exit_node >= 0])
    times, lengths = source_costs(network, snapped, sources)
    durations, distances = assemble(snapped, sources, times, lengths)
    return TravelMatrix(durations_s=durations, distances_m=distances)


def matrix_key(network: RoadNetwork, points: NDArray[np.float64], max_snap_m: float) -> str:
    """Cache key of a request: the network's content, the snap limit and the exact points."""
    digest = hashlib.sha256(f"{MATRIX_VERSION}|{network.fingerprint}|{max_snap_m!r}|".encode())
    digest.update(np.ascontiguousarray(points, dtype=np.float64).tobytes())
    return digest.hexdigest()[:40]


class MatrixCache:
    """Travel matrices by request key: an in-memory LRU of ``max_items``, and ``.npz`` files in
    ``directory`` when one is given (so a restart keeps them), at most ``max_files`` of them (the
    least recently written go first). Safe to share between threads."""

    def __init__(self, directory: Path | None = None, max_items: int = 32, max_files: int = 256) -> None:
        if max_items < 1 or max_files < 1:
            raise ValueError(f"max_items and max_files must be >= 1, got {max_items} and {max_files}")
        self.directory = None if directory is None else Path(directory)
        self.max_items = max_items
        self.max_files = max_files
        self._memory: OrderedDict[str, TravelMatrix] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._memory)

    def _file(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"matrix-{key}.npz"

    def get(self, key: str) -> TravelMatrix | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        file = self._file(key)
        try:
            with np.load(file) as data:  # type: ignore[arg-type]  # None raises TypeError
                matrix = TravelMatrix(durations_s=data["durations_s"], distances_m=data["distances_m"])
        except (TypeError, OSError, KeyError, ValueError):  # none, pruned meanwhile, or unreadable
            return None
        self._remember(key, matrix)
        return matrix

    def put(self, key: str, matrix: TravelMatrix) -> None:
        self._remember(key, matrix)
        file = self._file(key)
        if file is None or file.exists():
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        # savez insists on .npz; the thread id keeps two writers of one key apart.
        temporary = file.with_name(f"{file.stem}.{threading.get_ident()}.tmp.npz")
        np.savez(temporary, durations_s=matrix.durations_s, distances_m=matrix.distances_m)
        temporary.replace(file)  # atomic: a reader never sees half a file
        self._prune()

    def _prune(self) -> None:
        assert self.directory is not None
        files = sorted(self.directory.glob("matrix-*.npz"), key=lambda f: f.stat().st_mtime if f.exists() else 0)
        for stale in files[: max(0, len(files) - self.max_files)]:
            stale.unlink(missing_ok=True)

    def _remember(self, key: str, matrix: TravelMatrix) -> None:
        with self._lock:
            self._memory[key] = matrix
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)


def travel_matrix(
    network: RoadNetwork,
    points: Sequence[Point],
    *,
    ids: Sequence[str] | None = None,
    max_snap_m: float = 500.0,
    cache: MatrixCache | None = None,
) -> TravelMatrix:
    """Directed travel durations (s) and distances (m) between ``(lon, lat)`` points, ``[from, to]``.

    Raises :class:`routing.errors.SnapError` naming the point (by its id in ``ids``) when it is
    farther than ``max_snap_m`` metres from any road of the network's profile.
    """
    array, labels = as_points(points, ids)
    key = matrix_key(network, array, max_snap_m) if cache is not None else ""
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    matrix = matrix_from_snaps(network, snap_arrays(network, array, labels, max_snap_m=max_snap_m))
    if cache is not None:
        cache.put(key, matrix)
    return matrix


class MatrixProvider(Protocol):
    """What Doorstep needs from a routing engine: matrices between points and road geometry."""

    def matrix(self, points: Sequence[Point], *, ids: Sequence[str] | None = None) -> TravelMatrix: ...

    def geometry(self, points: Sequence[Point]) -> LineString: ...


class OsmnxMatrixProvider:
    """:class:`MatrixProvider` over an OSM :class:`RoadNetwork` (scipy Dijkstra), with an optional cache."""

    def __init__(self, network: RoadNetwork, cache: MatrixCache | None = None, *, max_snap_m: float = 500.0):
        self.network = network
        self.cache = cache
        self.max_snap_m = max_snap_m

    def matrix(self, points: Sequence[Point], *, ids: Sequence[str] | None = None) -> TravelMatrix:
        return travel_matrix(self.network, points, ids=ids, max_snap_m=self.max_snap_m, cache=self.cache)

    def geometry(self, points: Sequence[Point]) -> LineString:
        return route_geometry(self.network, points, max_snap_m=self.max_snap_m)
