"""The road networks the service routes on: name -> profile -> :class:`RoadNetwork`.

The API process loads every configured network in its lifespan (``load_all``); worker
processes load each one the first time a job needs it and keep it (``get``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routing.errors import NetworkError, ProblemError
from service.config import DEFAULT_SOURCE, Settings

if TYPE_CHECKING:
    from routing.matrix import MatrixCache
    from routing.model import TravelMatrix
    from routing.network import RoadNetwork

log = logging.getLogger(__name__)


class NetworkRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._networks: dict[tuple[str, str], RoadNetwork] = {}
        self._errors: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._matrix_cache: MatrixCache | None = None

    @property
    def names(self) -> list[str]:
        return list(self.settings.networks)

    def source(self, name: str) -> Path:
        from routing.network import default_network_source

        source = self.settings.networks[name]
        return default_network_source() if source == DEFAULT_SOURCE else Path(source)

    def resolve(self, name: str | None) -> str:
        """The network a request means (its own, else the default); ProblemError if unknown."""
        chosen = name if name is not None else self.settings.default_network
        if chosen is None:
            raise ProblemError(
                "this server has no road network: give `matrices`", path=("network",)
            )
        if chosen not in self.settings.networks:
            known = ", ".join(self.names) or "none"
            raise ProblemError(f'unknown network "{chosen}" (loaded: {known})', path=("network",))
        return chosen

    def get(self, name: str, profile: str) -> RoadNetwork:
        """The network ``name`` for ``profile``, loaded on first use. NetworkError if it cannot load."""
        from routing.network import load_network

        key = (name, profile)
        with self._lock:
            if key in self._networks:
                return self._networks[key]
            try:
                network = load_network(
                    self.source(name), profile=profile, name=name, cache_dir=self.settings.cache_dir
                )
            except NetworkError as error:
                self._errors[key] = str(error)
                raise
            except (OSError, ValueError) as error:
                self._errors[key] = str(error)
                raise NetworkError(f'road network "{name}" ({profile}) cannot be loaded: {error}') from error
            self._networks[key] = network
            self._errors.pop(key, None)
            log.info("loaded network %s", network)
            return network

    def travel_matrix(
        self, name: str, profile: str, points: list[tuple[float, float]], ids: list[str]
    ) -> TravelMatrix:
        """Travel matrix between ``points`` on network ``name`` for ``profile``, from the cache
        (memory, then disk) when the same points were asked for before on the same network."""
        from routing.matrix import MatrixCache, travel_matrix

        with self._lock:
            if self._matrix_cache is None:
                self._matrix_cache = MatrixCache(self.settings.cache_dir / "matrices", max_items=16,
                                                 max_files=self.settings.matrix_cache_files)
        return travel_matrix(self.get(name, profile), points, ids=ids, max_snap_m=self.settings.max_snap_m,
                             cache=self._matrix_cache)

    def adopt(self, name: str, profile: str, network: RoadNetwork) -> None:
        """Use an already loaded ``network`` as ``name``/``profile`` (the demo loads its own)."""
        with self._lock:
            self._networks[(name, profile)] = network

    def load_all(self) -> None:
        """Load every configured network and profile; failures are kept for /readyz, not raised."""
        from routing.fastest_paths import warm_up

        warm_up()  # the matrix search's compilation, before the first request rather than in it
        for name in self.names:
            for profile in self.settings.profiles:
                try:
                    self.get(name, profile)
                except NetworkError as error:
                    log.error("network %s (%s) failed to load: %s", name, profile, error)

    @property
    def errors(self) -> dict[str, str]:
        return {f"{name}/{profile}": message for (name, profile), message in self._errors.items()}

    def loaded(self, name: str) -> dict[str, RoadNetwork]:
        return {p: n for (nm, p), n in self._networks.items() if nm == name}

    def describe(self, name: str) -> dict[str, Any]:
        import shapely

        loaded = self.loaded(name)
        bounds: tuple[float, float, float, float] | None = None
        area: dict[str, Any] | None = None
        if loaded:
            boxes = [n.bounds for n in loaded.values()]
            bounds = (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
            area = shapely.geometry.mapping(shapely.union_all([n.area for n in loaded.values()]))
        return {
            "name": name,
            "profiles": sorted(loaded),
            "bounds": bounds,
            "area": _plain(area),
            "report": {p: _plain(vars(n.report)) for p, n in sorted(loaded.items())},
            "default": name == self.settings.default_network,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def streets_geojson(network: RoadNetwork, bbox: tuple[float, float, float, float] | None = None, *,
                    tolerance_deg: float = 0.00002, max_segments: int = 60_000) -> dict[str, Any]:
    """The network's streets as a GeoJSON FeatureCollection of one MultiLineString (lon/lat, 6
    decimals): each street once whatever its directions, simplified by ``tolerance_deg``, only
    those touching ``bbox`` (``west, south, east, north``) when given, at most ``max_segments``."""
    import shapely

    graph = network.graph
    seen: set[tuple[Any, Any]] = set()
    lines: list[list[list[float]]] = []
    west, south, east, north = bbox or (-180.0, -90.0, 180.0, 90.0)
    for u, v, data in graph.edges(data=True):
        key = (u, v) if str(u) <= str(v) else (v, u)
        if key in seen:
            continue
        seen.add(key)
        a, b = graph.nodes[u], graph.nodes[v]
        if bbox is not None and not (
            min(a["x"], b["x"]) <= east and max(a["x"], b["x"]) >= west
            and min(a["y"], b["y"]) <= north and max(a["y"], b["y"]) >= south
        ):
            continue
        geometry = data.get("geometry")
        if geometry is None:
            coords = [(a["x"], a["y"]), (b["x"], b["y"])]
        else:
            coords = list(shapely.simplify(geometry, tolerance_deg).coords)
        lines.append([[round(x, 6), round(y, 6)] for x, y in coords])
        if len(lines) >= max_segments:
            break
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"network": network.name, "profile": network.profile,
                                          "segments": len(lines)},
        "geometry": {"type": "MultiLineString", "coordinates": lines}}]}
