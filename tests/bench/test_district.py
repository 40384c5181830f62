"""The district benchmark's generator and plumbing, on a small real network (quality is the
benchmark's job, not the tests')."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench import district as bench
from bench.district_scenario import GREEN_CHANNEL, LAB_OPENING, POPULATION, District, district_scenario
from routing.model import Priority, TravelMatrix, VehicleKind
from routing.network import RoadNetwork, load_network
from tests.routing.conftest import osm_file


def small(networks: tuple[RoadNetwork, RoadNetwork], seed: int) -> District:
    """2 buses, 2 teams, 12 areas, 8 candidate stops, 15 visits, 2 labs over the whole extract."""
    drive, walk = networks
    return district_scenario(
        drive, walk, buses=2, teams=2, areas=12, stops=8, visits=15, labs=2, seed=seed, radius_km=None
    )


@pytest.fixture(scope="module")
def networks() -> tuple[RoadNetwork, RoadNetwork]:
    """Aguascalientes (about 700 drivable intersections): drive and walk."""
    source = osm_file("aguascalientes.osm.pbf")
    return load_network(source, profile="drive"), load_network(source, profile="walk")


@pytest.fixture(scope="module")
def district(networks: tuple[RoadNetwork, RoadNetwork]) -> District:
    return small(networks, seed=7)


def test_the_generator_is_deterministic_for_a_seed(
    networks: tuple[RoadNetwork, RoadNetwork], district: District
) -> None:
    assert small(networks, seed=7) == district
    other = small(networks, seed=8)
    assert [a.location for a in other.areas] != [a.location for a in district.areas]


def test_counts_are_exact_and_ids_unique(district: District) -> None:
    assert (len(district.areas), len(district.stops), len(district.visits), len(district.labs)) == (12, 8, 15, 2)
    kinds = Counter(v.kind for v in district.vehicles)
    assert kinds == {VehicleKind.BUS: 2, VehicleKind.TEAM: 2}
    ids = [s.id for s in district.sites] + [a.id for a in district.areas]
    assert len(ids) == len(set(ids))


def test_areas_and_stops_come_in_clusters_with_alternatives_of_two(district: District) -> None:
    assert all(POPULATION[0] <= a.population <= POPULATION[1] for a in district.areas)
    stops_per_cluster = Counter(district.cluster_of[s.id] for s in district.stops)
    assert set(stops_per_cluster.values()) <= {2, 3}
    assert {district.cluster_of[a.id] for a in district.areas} <= set(stops_per_cluster)
    groups = Counter(s.group for s in district.stops if s.group is not None)
    assert all(n == 2 for n in groups.values())
    for stop in district.stops:
        assert stop.max_dwell_s == 3 * 3600 and stop.people == 0  # people come from the areas
        if district.cluster_of[stop.id].startswith("school"):
            assert stop.time_windows == (GREEN_CHANNEL,)


def test_fleet_labs_and_visits_follow_the_field(district: District) -> None:
    bus = next(v for v in district.vehicles if v.kind is VehicleKind.BUS)
    assert (bus.profile, bus.speed_factor, bus.lanes, bus.seconds_per_person) == ("drive", 0.8, 2, 20)
    assert dict(bus.capacity) == {"tubes": 150} and str(bus.shift) == "08:00-18:00"
    assert all(lab.opening == (LAB_OPENING,) for lab in district.labs)
    priorities = Counter(v.priority for v in district.visits)
    assert priorities[Priority.QUARANTINE] == 3  # 20 % of 15
    assert priorities[Priority.VULNERABLE] == 6  # 40 %


def test_the_district_makes_a_valid_problem(district: District) -> None:
    n = len(district.sites)
    zero = np.zeros((n, n))
    problem = district.problem({"drive": TravelMatrix(zero, zero), "walk": TravelMatrix(zero, zero)})
    assert [s.id for s in problem.sites] == [s.id for s in district.sites]


def test_the_baseline_sends_each_area_to_its_nearest_stop_in_reach(district: District) -> None:
    n = len(district.sites)
    durations = np.arange(n * n, dtype=float).reshape(n, n)
    matrices = {"drive": TravelMatrix(durations, durations), "walk": TravelMatrix(durations, durations)}
    walk = np.full((len(district.areas), len(district.stops)), 5000.0)
    walk[:, 3] = 300.0  # every area but the first walks 300 m to stop 3
    walk[0, :] = 900.0  # too far for the first
    problem, assignment = bench.baseline_problem(district, matrices, walk)
    stop = district.stops[3]
    assert assignment[district.areas[0].id] is None
    assert all(assignment[a.id] == stop.id for a in district.areas[1:])
    (only,) = problem.stops
    assert only.id == stop.id and only.required and only.group is None
    assert only.people == sum(a.population for a in district.areas[1:])
    assert dict(only.demand) == {"tubes": -(-only.people // 10)}
    full, sub = district.sites, problem.sites
    i, j = full.index(stop), next(k for k, s in enumerate(full) if s.id == district.labs[0].id)
    assert problem.matrices["drive"].durations_s[sub.index(only), -len(district.labs)] == durations[i, j]


def test_the_cluster_bound_serves_each_cluster_from_one_place(district: District) -> None:
    n = len(district.sites)
    durations = np.arange(n * n, dtype=float).reshape(n, n)
    matrices = {"drive": TravelMatrix(durations, durations), "walk": TravelMatrix(durations, durations)}
    walk = np.full((len(district.areas), len(district.stops)), 300.0)
    walk[0, :] = 900.0  # the first area has no stop in reach: the bound leaves it out too
    problem = bench.cluster_bound_problem(district, matrices, walk)
    first_stop = {}
    for stop in district.stops:
        first_stop.setdefault(district.cluster_of[stop.id], stop)
    people: Counter[str] = Counter()
    for area in district.areas[1:]:
        people[district.cluster_of[area.id]] += area.population
    served: Counter[str] = Counter()
    for stop in problem.stops:
        cluster = next(c for c, s in first_stop.items() if stop.id.startswith(s.id + "-"))
        assert stop.location == first_stop[cluster].location and stop.required and stop.group is None
        assert stop.people <= (3 * 3600 - 600) // 10  # one stay: 2 lanes at 20 s a person
        served[cluster] += stop.people
        i, j = district.sites.index(first_stop[cluster]), district.sites.index(district.labs[0])
        assert problem.matrices["drive"].durations_s[problem.site_index(stop.id),
                                                     problem.site_index(district.labs[0].id)] == durations[i, j]
    assert served == people


def test_the_benchmark_writes_both_sides_with_the_required_fields(tmp_path: Path) -> None:
    source = osm_file("aguascalientes.osm.pbf")
    out = tmp_path / "district.json"
    code = bench.main(
        [
            str(source),
            "--buses",
            "2",
            "--teams",
            "1",
            "--areas",
            "6",
            "--stops",
            "4",
            "--visits",
            "5",
            "--labs",
            "1",
            "--time-limit",
            "2",
            "--radius-km",
            "0",
            "--bound",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    document = json.loads(out.read_text())
    for side in ("doorstep", "baseline", "cluster_bound"):
        assert set(bench.FIELDS) <= set(document[side]), side
        assert document[side]["people_total"] == document["scenario"]["people_total"]
        assert document[side]["visits_total"] == 5
        assert document[side]["solve_s"] > 0  # how long: the benchmark's to report, not a test's to bound
    assert set(document["ratios"]) == set(document["bound_ratios"]) == set(bench.RATIO_FIELDS)
