"""Loading road networks: readers, profiles, clipping, connectivity, the disk cache, online sources."""

from __future__ import annotations

import bz2
import json
import socket
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import requests
from shapely.geometry import Polygon, box

from routing import network as network_module
from routing.errors import NetworkError
from routing.network import (
    PROFILES,
    RoadNetwork,
    default_network_source,
    load_network,
    network_from_bbox,
    network_from_place,
    network_from_polygon,
    save_graphml,
)
from routing.profiles import FALLBACK_DRIVE_KPH, WALK_KPH, edge_allowed, edge_speeds_kph, parse_maxspeed_kph
from tests.routing.conftest import osm_file

DRIVE_EXCLUDED = {"footway", "path", "pedestrian", "steps", "track", "cycleway", "service"}


def highways(network: RoadNetwork) -> set[str]:
    return {str(data.get("highway")) for *_, data in network.graph.edges(data=True)}


# --- profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "kph"),
    [
        ("50", 50.0),
        ("50 km/h", 50.0),
        ("30 mph", 30 * 1.609344),
        ("30;50", 30.0),  # several limits: the lowest, the cautious choice
        ("walk", WALK_KPH),
        ("CH:urban", None),  # a zone, not a number: the highway default applies
        ("none", None),  # German autobahn: no number to use
        ("0", None),
    ],
)
def test_parses_maxspeed_tags(tag: str, kph: float | None) -> None:
    assert parse_maxspeed_kph(tag) == pytest.approx(kph) if kph is not None else parse_maxspeed_kph(tag) is None


def test_drive_speed_comes_from_maxspeed_then_highway_then_fallback() -> None:
    edges = [
        {"highway": "residential", "maxspeed": "50"},
        {"highway": "residential", "maxspeed": "CH:urban"},
        {"highway": "mystery_road"},
        {"highway": ["primary", "secondary"]},  # a simplified edge over two ways
    ]
    assert list(edge_speeds_kph(edges, "drive")) == [50.0, 30.0, FALLBACK_DRIVE_KPH, 55.0]
    assert set(edge_speeds_kph(edges, "walk")) == {WALK_KPH}


@pytest.mark.parametrize(
    ("tags", "drive", "walk"),
    [
        ({"highway": "residential"}, True, True),
        ({"highway": "footway"}, False, True),
        ({"highway": "motorway"}, True, False),
        ({"highway": "service", "service": "parking_aisle"}, False, True),
        ({"highway": "residential", "access": "private"}, False, False),
        ({"highway": "residential", "motor_vehicle": "no"}, False, True),
        ({"highway": "primary", "sidewalk": "separate"}, True, False),  # walk on the mapped sidewalk
        ({"highway": "pedestrian", "area": "yes"}, False, False),
        ({"building": "yes"}, False, False),  # no highway tag: never a road
    ],
)
def test_way_filters_follow_osmnx(tags: dict[str, str], drive: bool, walk: bool) -> None:
    assert (edge_allowed(tags, "drive"), edge_allowed(tags, "walk")) == (drive, walk)


# --- readers ----------------------------------------------------------------------------------


def test_pbf_drive_network_has_lengths_times_and_no_footways(aguascalientes_drive: RoadNetwork) -> None:
    network = aguascalientes_drive
    assert network.profile == "drive" and network.graph.graph["crs"] == "EPSG:4326"
    for *_, data in network.graph.edges(data=True):
        assert data["length"] > 0 and data["travel_time"] > 0
    assert not highways(network) & DRIVE_EXCLUDED
    assert nx.is_strongly_connected(network.graph)
    report = network.report
    assert (report.nodes, report.edges) == (network.graph.number_of_nodes(), network.graph.number_of_edges())


def test_reading_a_pbf_leaves_no_thread_behind() -> None:
    # pyrosm's progress bars start tqdm's monitor thread; a second thread makes every later
    # solve in this process start its engines from a forkserver instead of forking them.
    before = threading.active_count()
    load_network(osm_file("aguascalientes.osm.pbf"), profile="walk")
    assert threading.active_count() == before


def test_xml_reader_filters_ways_like_the_pbf_reader(aguascalientes_drive: RoadNetwork) -> None:
    # graph_from_xml keeps footways, paths and untagged ways: our filter must remove them.
    xml = load_network(osm_file("aguascalientes.osm.bz2"), profile="drive")
    assert not highways(xml) & DRIVE_EXCLUDED and "None" not in highways(xml)
    assert nx.is_strongly_connected(xml.graph)
    assert xml.report.nodes == pytest.approx(aguascalientes_drive.report.nodes, rel=0.05)


def test_keeps_the_largest_strongly_connected_component_and_reports_the_rest() -> None:
    network = load_network(osm_file("West-Oakland.osm.bz2"), profile="drive")
    assert nx.is_strongly_connected(network.graph)
    assert network.report.dropped_components > 0
    assert network.report.dropped_nodes > 0 and network.report.dropped_edges > 0


def test_walk_network_is_denser_and_slower(aguascalientes_drive: RoadNetwork, aguascalientes_walk: RoadNetwork) -> None:
    assert aguascalientes_walk.report.nodes > aguascalientes_drive.report.nodes
    assert "footway" in highways(aguascalientes_walk) or "pedestrian" in highways(aguascalientes_walk)
    speeds = {data["speed_kph"] for *_, data in aguascalientes_walk.graph.edges(data=True)}
    assert speeds == {WALK_KPH}
    # Walking ignores one-way streets: every edge has its reverse.
    assert all(aguascalientes_walk.graph.has_edge(v, u) for u, v in aguascalientes_walk.graph.edges())


def test_graphml_round_trip_gives_the_same_network(tmp_path: Path) -> None:
    network = load_network(osm_file("West-Oakland.osm.bz2"), profile="walk")
    save_graphml(network, tmp_path / "oakland.graphml")
    again = load_network(tmp_path / "oakland.graphml", profile="walk")
    assert again.fingerprint == network.fingerprint
    with pytest.raises(NetworkError, match='holds a "walk" network, not "drive"'):
        load_network(tmp_path / "oakland.graphml", profile="drive")


def test_default_network_source_is_pyrosms_helsinki() -> None:
    path = default_network_source()
    assert path.name == "Helsinki.osm.pbf" and path.is_file()
    network = load_network(path, profile="drive")
    west, south, east, north = network.bounds
    assert 24.9 < west < east < 25.0 and 60.1 < south < north < 60.2


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "message"),
    [
        ("roads.gz", {}, ValueError, "use a .pbf, .osm, .osm.bz2, .xml or .graphml file"),
        ("missing.pbf", {}, NetworkError, "does not exist"),
        ("aguascalientes.osm.pbf", {"profile": "bike"}, ValueError, "unknown profile 'bike'"),
        # A clip far from the extract leaves nothing to route on.
        ("aguascalientes.osm.pbf", {"clip": (0.0, 0.0, 0.01, 0.01)}, NetworkError, "check the clip area"),
        ("aguascalientes.osm.pbf", {"clip": (1.0, 0.0, 0.0, 1.0)}, ValueError, "west < east"),
    ],
)
def test_bad_sources_raise_clear_errors(
    source: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    path = osm_file("aguascalientes.osm.pbf").parent / source
    with pytest.raises(error, match=message):
        load_network(path, **kwargs)


# --- clipping and area ------------------------------------------------------------------------


def test_clips_to_a_bbox_and_to_a_polygon(aguascalientes_drive: RoadNetwork) -> None:
    west, south, east, north = aguascalientes_drive.bounds
    mid_lon, mid_lat = (west + east) / 2, (south + north) / 2
    bbox = (west, south, mid_lon, mid_lat)
    clipped = load_network(osm_file("aguascalientes.osm.pbf"), clip=bbox)
    assert 0 < clipped.report.nodes < aguascalientes_drive.report.nodes
    assert box(*bbox).contains(clipped.area)
    district = Polygon([(west, south), (east, south), (west, north)])  # a triangle
    in_district = load_network(osm_file("aguascalientes.osm.pbf"), clip=district)
    assert district.buffer(1e-9).contains(in_district.area)


def test_contains_points_near_the_network_only(aguascalientes_drive: RoadNetwork) -> None:
    west, south, east, north = aguascalientes_drive.bounds
    assert aguascalientes_drive.contains(((west + east) / 2, (south + north) / 2))
    assert not aguascalientes_drive.contains((east + 0.05, north))  # about 5 km east
    assert aguascalientes_drive.contains((east + 0.05, north), margin_m=10_000)


# --- disk cache -------------------------------------------------------------------------------


def test_second_load_is_served_from_the_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = osm_file("West-Oakland.osm.bz2")
    first = load_network(path, profile="drive", cache_dir=tmp_path)

    def must_not_parse(*args: object) -> None:
        raise AssertionError("parsed the OSM file again instead of using the cache")

    monkeypatch.setitem(network_module._READERS, ".bz2", must_not_parse)
    again = load_network(path, profile="drive", cache_dir=tmp_path)
    assert again.fingerprint == first.fingerprint and again.report == first.report
    with pytest.raises(AssertionError, match="parsed the OSM file again"):
        load_network(path, profile="walk", cache_dir=tmp_path)  # another profile: another key


# --- online sources, with the HTTP layer faked ------------------------------------------------


def overpass_json(path: Path) -> dict[str, Any]:
    """An Overpass API response (``out;`` JSON) built from a real OSM XML extract."""
    root = ET.fromstring(bz2.decompress(path.read_bytes()))
    elements: list[dict[str, Any]] = []
    for element in root:
        tags = {t.get("k"): t.get("v") for t in element.findall("tag")}
        if element.tag == "node":
            elements.append({"type": "node", "id": int(element.get("id", 0)), "lat": float(element.get("lat", 0)),
                             "lon": float(element.get("lon", 0)), "tags": tags})
        elif element.tag == "way":
            nodes = [int(nd.get("ref", 0)) for nd in element.findall("nd")]
            elements.append({"type": "way", "id": int(element.get("id", 0)), "nodes": nodes, "tags": tags})
    return {"version": 0.6, "generator": "faked for tests", "elements": elements}


class FakeResponse:
    def __init__(self, url: str, payload: Any = None, text: str = "") -> None:
        self.url, self.status_code, self.ok, self.reason = url, 200, True, "OK"
        self._payload = payload
        self.text = text or json.dumps(payload)
        self.content = self.text.encode()

    def json(self) -> Any:
        return self._payload


@pytest.fixture
def fake_osm_web(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake Overpass and Nominatim at the ``requests`` level with the West Oakland extract."""
    payload = overpass_json(osm_file("West-Oakland.osm.bz2"))
    calls: dict[str, list[str]] = {"post": [], "get": []}
    west, south, east, north = -122.31, 37.80, -122.29, 37.82
    place = [{
        "place_id": 1, "osm_type": "relation", "osm_id": 1, "lat": "37.81", "lon": "-122.30",
        "class": "boundary", "type": "administrative", "display_name": "West Oakland, test", "importance": 0.5,
        "boundingbox": [str(south), str(north), str(west), str(east)],
        "geojson": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                        [west, north], [west, south]]]},
    }]

    def post(url: str, data: dict[str, str], **kwargs: Any) -> FakeResponse:
        calls["post"].append(url)
        # Overpass applies the query's way filter: so does the fake (drive's filter names motorcar).
        profile = "drive" if "motorcar" in data["data"] else "walk"
        elements = [e for e in payload["elements"] if e["type"] == "node" or edge_allowed(e["tags"], profile)]
        return FakeResponse(url, {**payload, "elements": elements})

    def get(url: str, **kwargs: Any) -> FakeResponse:
        calls["get"].append(url)
        if url.endswith("/status"):  # Overpass's rate-limit endpoint: a free slot
            return FakeResponse(url, text="Connected as: 1\nCurrent time: x\nAnnounced endpoint: none\n"
                                          "Rate limit: 2\n2 slots available now.\n")
        return FakeResponse(url, place)

    monkeypatch.setattr(requests, "post", post)
    monkeypatch.setattr(requests, "get", get)
    # OSMnx pins the Overpass host's IP (no DNS here) by replacing socket.getaddrinfo: restore it.
    monkeypatch.setattr(socket, "gethostbyname", lambda host: "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    return calls


def test_network_from_bbox_downloads_filters_and_caches(tmp_path: Path, fake_osm_web: dict[str, list[str]]) -> None:
    bbox = (-122.31, 37.80, -122.29, 37.82)
    network = network_from_bbox(bbox, profile="drive", cache_dir=tmp_path)
    offline = load_network(osm_file("West-Oakland.osm.bz2"), profile="drive")
    assert network.report.nodes == offline.report.nodes
    assert not highways(network) & DRIVE_EXCLUDED
    assert len(fake_osm_web["post"]) == 1
    assert list((tmp_path / "http").glob("*.json")), "OSMnx's HTTP cache was not written"
    network_from_bbox(bbox, profile="drive", cache_dir=tmp_path)
    assert len(fake_osm_web["post"]) == 1  # served from the cache


def test_network_from_polygon_and_place(fake_osm_web: dict[str, list[str]]) -> None:
    district = box(-122.31, 37.80, -122.29, 37.82)
    walk = network_from_polygon(district, profile="walk")
    assert walk.profile == "walk" and walk.report.nodes > 10
    by_name = network_from_place("West Oakland", profile="walk")
    assert by_name.fingerprint == walk.fingerprint
    assert any("search" in url for url in fake_osm_web["get"])


def test_profiles_are_drive_and_walk() -> None:
    assert PROFILES == ("drive", "walk")
