"""The city benchmark's round request, on a small real network: districts generated as the district
benchmark generates them become one valid round request, split back into the same districts."""

from __future__ import annotations

import pytest

from bench import city
from bench.district_scenario import district_scenario
from routing.network import RoadNetwork, load_network
from service.rounds import split_round
from service.schemas import PlanRequest
from tests.routing.conftest import osm_file


@pytest.fixture(scope="module")
def networks() -> tuple[RoadNetwork, RoadNetwork]:
    source = osm_file("aguascalientes.osm.pbf")
    return load_network(source, profile="drive"), load_network(source, profile="walk")


def test_districts_make_one_round_request_that_splits_back_into_them(
    networks: tuple[RoadNetwork, RoadNetwork],
) -> None:
    drive, walk = networks
    districts = [district_scenario(drive, walk, buses=2, teams=2, areas=12, stops=8, visits=15, labs=2, seed=seed,
                                   radius_km=None) for seed in (1, 2, 3)]
    request = PlanRequest.model_validate(city.round_request(districts, time_limit_s=30, seed=1))
    parts = split_round(request)
    assert sorted(parts) == ["d0", "d1", "d2"]
    for k, district in enumerate(districts):
        part = parts[f"d{k}"]
        assert part is not None
        assert len(part.vehicles) == len(district.vehicles)
        assert len(part.visits) == len(district.visits) and len(part.stops) == len(district.stops)
        assert len(part.areas) == len(district.areas) and len(part.labs) == len(district.labs)
        assert sum(a.population for a in part.areas) == district.people_total
