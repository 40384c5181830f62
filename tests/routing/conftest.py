"""Road-network fixtures: small real OSM extracts from ``../shared/osm``, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.network import RoadNetwork, load_network

SHARED = Path(__file__).parents[3] / "shared"
OSM = SHARED / "osm"


def osm_file(name: str) -> Path:
    """A shared OSM extract, or skip the test when the shared folder is not there."""
    path = OSM / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared OSM extracts live in ../shared/osm beside the repository")
    return path


@pytest.fixture(scope="session")
def aguascalientes_drive() -> RoadNetwork:
    """About 700 intersections of Aguascalientes (Mexico), with one-way streets."""
    return load_network(osm_file("aguascalientes.osm.pbf"), profile="drive")


@pytest.fixture(scope="session")
def aguascalientes_walk() -> RoadNetwork:
    return load_network(osm_file("aguascalientes.osm.pbf"), profile="walk")
