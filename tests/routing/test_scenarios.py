"""The home-visit scenario generator: deterministic, and shaped like the field's figures."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest

from routing.model import Priority, Problem, TravelMatrix, swab_tubes
from routing.network import default_network_source, load_network
from routing.scenarios import (
    CARER_AFTERNOON,
    CARER_MORNING,
    GREEN_CHANNEL,
    LOCKED_DOWN,
    LUNCH,
    PAEDIATRIC,
    SHIFT,
    home_visit_scenario,
    street_addresses,
)


@dataclass
class Net:
    graph: nx.MultiDiGraph


def _grid(n: int, *, spacing_deg: float = 0.001, named: bool = True) -> Net:
    """An n x n street grid near Helsinki, ~55 m x 110 m blocks, streets named "Katu <row>"."""
    graph = nx.MultiDiGraph(crs="EPSG:4326")
    for i in range(n):
        for j in range(n):
            graph.add_node(i * n + j, x=24.94 + j * spacing_deg, y=60.17 + i * spacing_deg)
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < n and j + dj < n:
                    a, b = i * n + j, (i + di) * n + j + dj
                    attrs = {"name": f"Katu {i}"} if named and di == 0 else {}
                    graph.add_edge(a, b, length=60.0, **attrs)
                    graph.add_edge(b, a, length=60.0, **attrs)
    return Net(graph)


@pytest.fixture(scope="module")
def walk() -> Net:
    return _grid(12)


@pytest.fixture(scope="module")
def drive() -> Net:
    return _grid(6, spacing_deg=0.0022)


def test_same_seed_gives_the_same_scenario(walk: Net, drive: Net) -> None:
    first = home_visit_scenario(walk, drive, visits=40, teams=4, seed=7)
    again = home_visit_scenario(walk, drive, visits=40, teams=4, seed=7)
    assert first == again
    assert [v.notes for v in first[2]] == [v.notes for v in again[2]]  # notes are not compared by ==


def test_another_seed_gives_other_visits(walk: Net, drive: Net) -> None:
    _, _, one = home_visit_scenario(walk, drive, visits=40, seed=1)
    _, _, two = home_visit_scenario(walk, drive, visits=40, seed=2)
    assert [v.location for v in one] != [v.location for v in two]


def test_household_mix_follows_the_field(walk: Net, drive: Net) -> None:
    _, _, visits = home_visit_scenario(walk, drive, visits=80, seed=1)
    assert [v.id for v in visits] == [f"v-{i:03d}" for i in range(1, 81)]
    priorities = Counter(v.priority for v in visits)
    assert priorities[Priority.QUARANTINE] == 16  # 20 %
    assert priorities[Priority.VULNERABLE] == 32  # 40 %: elderly, bedridden, disabled, pregnant, babies
    assert 1 <= priorities[Priority.URGENT] <= 4
    for visit in visits:
        assert 1 <= visit.people <= 5
        assert 5 * 60 <= visit.setup_s <= 8 * 60
        assert 60 <= visit.per_person_s <= 120
        quarantined = visit.priority in (Priority.QUARANTINE, Priority.URGENT)
        assert visit.demand == {"kits": visit.people, "tubes": swab_tubes(visit.people, pooled=not quarantined)}
        assert visit.notes
    assert 3 <= sum(PAEDIATRIC in v.skills for v in visits) <= 5


def test_time_windows_are_early_green_channel_carer_or_open(walk: Net, drive: Net) -> None:
    _, _, visits = home_visit_scenario(walk, drive, visits=80, seed=1)
    windows = Counter(v.time_windows for v in visits)
    assert set(windows) <= {(), (LOCKED_DOWN,), (GREEN_CHANNEL,), (CARER_MORNING,), (CARER_AFTERNOON,)}
    assert windows[(LOCKED_DOWN,)] == 8 and windows[(GREEN_CHANNEL,)] == 8
    assert windows[()] > 40  # most households are home all day
    assert LOCKED_DOWN.start_s == 6 * 3600 + 1800 and str(GREEN_CHANNEL) == "12:00-14:00"


def test_teams_walk_or_drive_with_shift_lunch_and_one_paediatric_team(walk: Net, drive: Net) -> None:
    depots, vehicles, _ = home_visit_scenario(walk, drive, visits=20, teams=5)
    assert [v.id for v in vehicles] == [f"team-{i}" for i in range(1, 6)]
    assert [v.profile for v in vehicles] == ["walk", "walk", "drive", "walk", "walk"]
    assert [v.id for v in vehicles if PAEDIATRIC in v.skills] == ["team-1"]
    assert {d.id for d in depots} == {v.start_depot for v in vehicles} == {v.end_depot for v in vehicles}
    for vehicle in vehicles:
        assert vehicle.shift == SHIFT and vehicle.breaks == (LUNCH,)
        assert set(vehicle.capacity) == {"kits", "tubes"}


def test_without_a_drive_network_every_team_walks(walk: Net) -> None:
    _, vehicles, _ = home_visit_scenario(walk, None, visits=10, teams=3)
    assert {v.profile for v in vehicles} == {"walk"}


def test_visits_stand_a_few_metres_from_a_named_street_node(walk: Net, drive: Net) -> None:
    _, _, visits = home_visit_scenario(walk, drive, visits=60, seed=3)
    nodes = np.array([[d["x"], d["y"]] for _, d in walk.graph.nodes(data=True)])
    for visit in visits:
        dlon, dlat = (nodes - np.array(visit.location)).T
        metres = np.hypot(dlon * 111_320 * math.cos(math.radians(60.17)), dlat * 111_320)
        assert 1.5 <= metres.min() <= 8.5
    addresses = street_addresses(walk, visits)
    assert set(addresses) == {v.id for v in visits}
    assert all(address.startswith("Katu ") for address in addresses.values())


def test_more_visits_than_doors_share_buildings(walk: Net) -> None:
    tiny = _grid(2)
    _, _, visits = home_visit_scenario(tiny, None, visits=12, teams=1)
    assert len(visits) == 12


def test_the_scenario_makes_a_valid_problem(walk: Net, drive: Net) -> None:
    depots, vehicles, visits = home_visit_scenario(walk, drive, visits=30, teams=5)
    n = len(depots) + len(visits)
    zeros = TravelMatrix(np.zeros((n, n)), np.zeros((n, n)))
    problem = Problem(depots=depots, vehicles=vehicles, visits=visits, matrices={"walk": zeros, "drive": zeros})
    assert problem.dimensions == ("kits", "tubes")


@pytest.mark.parametrize(
    ("visits", "teams", "message"),
    [
        (0, 5, "visits must be >= 1"),  # an empty day is not a scenario
        (10, 0, "teams must be >= 1"),  # nobody to send
    ],
)
def test_raises_on_empty_requests(walk: Net, visits: int, teams: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        home_visit_scenario(walk, None, visits=visits, teams=teams)


def test_on_helsinki_visits_stand_on_real_streets() -> None:
    walk_net = load_network(default_network_source(), profile="walk")
    drive_net = load_network(default_network_source(), profile="drive")
    depots, vehicles, visits = home_visit_scenario(walk_net, drive_net, visits=80, teams=5, seed=1)
    west, south, east, north = walk_net.bounds
    assert all(west - 0.001 <= v.location[0] <= east + 0.001 for v in visits)
    assert all(south - 0.001 <= v.location[1] <= north + 0.001 for v in visits)
    assert len({v.location for v in visits}) == 80
    addresses = street_addresses(walk_net, visits)
    assert len(addresses) == 80 and "Aleksanterinkatu" in " ".join(addresses.values())
    assert len(depots) == 2 and len(vehicles) == 5
