"""Walking distances from demand areas to bus stops, on a real walk network."""

from __future__ import annotations

import numpy as np
import pytest

from routing.matrix import travel_matrix
from routing.model import BusStop, DemandArea
from routing.network import RoadNetwork
from routing.walking import area_walk_m


def _near_nodes(network: RoadNetwork, count: int, seed: int) -> list[tuple[float, float]]:
    """Points a few metres off random nodes of the network."""
    a = network.arrays
    rng = np.random.default_rng(seed)
    nodes = rng.choice(len(a.lon), count, replace=False)
    return [(float(a.lon[n]) + 2e-5, float(a.lat[n]) - 1e-5) for n in nodes]


@pytest.fixture(scope="module")
def three_areas_four_stops(aguascalientes_walk: RoadNetwork) -> tuple[list[DemandArea], list[BusStop]]:
    points = _near_nodes(aguascalientes_walk, 7, seed=3)
    areas = [DemandArea(f"a-{i}", p, population=100) for i, p in enumerate(points[:3])]
    stops = [BusStop(f"s-{i}", p) for i, p in enumerate(points[3:])]
    return areas, stops


def test_walking_metres_are_the_distance_block_of_the_travel_matrix(
    aguascalientes_walk: RoadNetwork, three_areas_four_stops: tuple[list[DemandArea], list[BusStop]]
) -> None:
    areas, stops = three_areas_four_stops
    walk = area_walk_m(aguascalientes_walk, areas, stops)
    full = travel_matrix(aguascalientes_walk, [a.location for a in areas] + [s.location for s in stops])
    assert walk.shape == (3, 4)
    np.testing.assert_allclose(walk, full.distances_m[:3, 3:], rtol=1e-9)
    assert np.isfinite(walk).all() and (walk > 0).all()


def test_an_area_off_the_footways_is_an_inf_row_not_an_error(
    aguascalientes_walk: RoadNetwork, three_areas_four_stops: tuple[list[DemandArea], list[BusStop]]
) -> None:
    areas, stops = three_areas_four_stops
    west, south, _, _ = aguascalientes_walk.bounds
    far = DemandArea("far-away", (west - 0.05, south - 0.05), population=50)  # about 5 km outside
    walk = area_walk_m(aguascalientes_walk, [areas[0], far, areas[1]], stops)
    assert np.isinf(walk[1]).all()
    np.testing.assert_allclose(walk[[0, 2]], area_walk_m(aguascalientes_walk, areas[:2], stops))


def test_a_stop_off_the_footways_is_an_inf_column(
    aguascalientes_walk: RoadNetwork, three_areas_four_stops: tuple[list[DemandArea], list[BusStop]]
) -> None:
    areas, stops = three_areas_four_stops
    west, south, _, _ = aguascalientes_walk.bounds
    far = BusStop("far-stop", (west - 0.05, south - 0.05))
    walk = area_walk_m(aguascalientes_walk, areas, [*stops, far])
    assert np.isinf(walk[:, -1]).all() and np.isfinite(walk[:, :-1]).all()


def test_no_areas_or_no_stops_give_an_empty_matrix_of_the_right_shape(aguascalientes_walk: RoadNetwork) -> None:
    assert area_walk_m(aguascalientes_walk, [], [BusStop("s", (0.0, 0.0))]).shape == (0, 1)
    assert area_walk_m(aguascalientes_walk, [DemandArea("a", (0.0, 0.0), 1)], []).shape == (1, 0)


def test_raises_when_given_a_drive_network(aguascalientes_drive: RoadNetwork) -> None:
    with pytest.raises(ValueError, match="walk network"):
        area_walk_m(aguascalientes_drive, [], [])
