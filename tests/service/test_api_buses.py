"""Bus stops, demand areas and labs at the HTTP edge: 422s naming the field, the problem built from
a request, the plan document's stop and lab steps, coverage and walks on the walk network."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from routing.evaluate import evaluate
from routing.model import BusStop, Lab, Problem
from routing.plan import AreaCoverage, Plan, Reason, StepKind, Unassigned
from service.config import Settings
from service.main import create_app
from service.schemas import PlanDocument, PlanRequest, dump_document, plan_document, to_problem

DEPOT = (113.620, 34.750)
VISITS = {"a": (113.630, 34.760), "b": (113.640, 34.750)}
STOPS = {"plaza": (113.625, 34.755), "yard-east": (113.635, 34.752), "yard-west": (113.634, 34.752)}
LAB = (113.628, 34.748)


def _matrix(points: list[tuple[float, float]]) -> dict[str, list[list[float]]]:
    """Straight-line metres x 1.3, driven at 30 km/h: plausible, symmetric, enough for wiring tests."""
    metres = [
        [1.3 * 111_320 * math.hypot((p[0] - q[0]) * math.cos(math.radians(34.75)), p[1] - q[1]) for q in points]
        for p in points
    ]
    return {"durations_s": [[round(m / 8.33) for m in row] for row in metres], "distances_m": metres}


def bus_request(**overrides: Any) -> dict[str, Any]:
    """A bus and a home-visit team from one depot: 2 visits, 3 candidate stops (two are
    alternatives of one compound), a point area and a polygon area, one lab."""
    points = [DEPOT, *VISITS.values(), *STOPS.values(), LAB]
    request: dict[str, Any] = {
        "name": "buses",
        "matrices": {"drive": _matrix(points)},
        "depots": [{"id": "station", "location": list(DEPOT)}],
        "vehicles": [
            {"id": "bus-1", "kind": "bus", "start_depot": "station", "shift": {"start": "08:00", "end": "18:00"},
             "capacity": {"tubes": 150}, "lanes": 2, "seconds_per_person": 20},
            {"id": "team-1", "kind": "team", "start_depot": "station", "shift": {"start": "08:00", "end": "16:00"},
             "capacity": {"tubes": 40}},
        ],
        "visits": [{"id": k, "location": list(v), "people": 2} for k, v in VISITS.items()],
        "stops": [
            {"id": "plaza", "location": list(STOPS["plaza"]), "time_windows": [{"start": "12:00", "end": "14:00"}],
             "max_dwell_s": 10800, "address": "Plaza gate", "notes": "park by the fountain"},
            {"id": "yard-east", "location": list(STOPS["yard-east"]), "group": "yard"},
            {"id": "yard-west", "location": list(STOPS["yard-west"]), "group": "yard"},
        ],
        "areas": [
            {"id": "school", "location": [113.6252, 34.7551], "population": 420},
            {"id": "compound", "population": 900, "walk_limit_m": 600,
             "polygon": [[113.6340, 34.7510], [113.6360, 34.7510], [113.6360, 34.7530], [113.6340, 34.7530]]},
        ],
        "labs": [{"id": "lab", "location": list(LAB), "opening": [{"start": "07:00", "end": "22:00"}]}],
        "options": {"time_limit_s": 1},
    }
    request.update(overrides)
    return request


# -- 422s ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("buses")
    settings = Settings(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", networks={}, workers=0, max_time_limit_s=60
    )
    with TestClient(create_app(settings)) as client:
        yield client


Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(request: dict[str, Any]) -> None:
        target = request
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _drop(path: tuple[Any, ...]) -> Mutation:
    def mutate(request: dict[str, Any]) -> None:
        target = request
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _no_lab(request: dict[str, Any]) -> None:
    request["labs"] = []  # the matrices still count the lab: one site too many


CASES = [
    # (mutation, loc, words in the message)
    pytest.param(_set(("stops", 0, "id"), "a"), ["body", "stops", 0, "id"], 'id "a" is used twice',
                 id="stop id of a visit"),
    pytest.param(_set(("labs", 0, "id"), "plaza"), ["body", "labs", 0, "id"], 'id "plaza" is used twice',
                 id="lab id of a stop"),
    pytest.param(_set(("areas", 1, "id"), "school"), ["body", "areas", 1, "id"], 'id "school" is used twice',
                 id="duplicate area id"),
    pytest.param(_set(("areas", 0, "population"), -5), ["body", "areas", 0, "population"],
                 "greater than or equal to 0", id="negative population"),
    pytest.param(_drop(("areas", 0, "location")), ["body", "areas", 0], "give `location` or `polygon`",
                 id="area without location or polygon"),
    pytest.param(_set(("areas", 1, "polygon"), [[113.63, 34.75], [113.64, 34.75], [113.65, 34.75]]),
                 ["body", "areas", 1], "encloses no area", id="flat polygon"),
    pytest.param(_set(("areas", 1, "polygon", 2), [213.6, 34.75]), ["body", "areas", 1, "polygon", 2],
                 "longitude must be within", id="polygon corner out of range"),
    pytest.param(_set(("areas", 0, "walk_limit_m"), 0), ["body", "areas", 0, "walk_limit_m"], "greater than 0",
                 id="zero walk limit"),
    pytest.param(_set(("stops", 0, "max_dwell_s"), 300), ["body", "stops", 0, "max_dwell_s"],
                 "must exceed setup_s", id="max dwell shorter than setup"),
    pytest.param(_set(("stops", 0, "time_windows"), [{"start": "14:00", "end": "12:00"}]),
                 ["body", "stops", 0, "time_windows", 0], "ends (12:00) before it starts (14:00)",
                 id="stop window ends before it starts"),
    pytest.param(_set(("stops", 1, "people"), -1), ["body", "stops", 1, "people"], "greater than or equal to 0",
                 id="negative people at a stop"),
    pytest.param(_set(("labs", 0, "opening"), [{"start": "22:00", "end": "07:00"}]),
                 ["body", "labs", 0, "opening", 0], "ends (07:00) before it starts (22:00)", id="lab opening reversed"),
    pytest.param(_set(("vehicles", 0, "lanes"), 0), ["body", "vehicles", 0, "lanes"], "greater than or equal to 1",
                 id="no sampling lanes"),
    pytest.param(_set(("vehicles", 0, "seconds_per_person"), -20), ["body", "vehicles", 0, "seconds_per_person"],
                 "greater than or equal to 0", id="negative seconds per person"),
    pytest.param(_set(("max_sample_age_s",), 0), ["body", "max_sample_age_s"], "greater than 0",
                 id="zero sample age"),
    pytest.param(_no_lab, ["body", "matrices", "drive"], "7x7 but the problem has 6 sites",
                 id="matrices not over depots, visits, stops and labs"),
]


@pytest.mark.parametrize(("mutate", "loc", "message"), CASES)
def test_bad_stops_areas_and_labs_are_422_naming_the_field(
    client: TestClient, mutate: Mutation, loc: list[Any], message: str
) -> None:
    request = copy.deepcopy(bus_request())
    mutate(request)
    response = client.post("/v1/plans", json=request)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["loc"] == loc and message in d["msg"] for d in detail), detail


def test_the_good_bus_request_beside_them_is_accepted(client: TestClient) -> None:
    assert client.post("/v1/plans", json=bus_request()).status_code == 202


def test_a_stop_group_of_one_is_fine(client: TestClient) -> None:
    request = bus_request()
    request["stops"][0]["group"] = "alone"
    assert client.post("/v1/plans", json=request).status_code == 202


# -- to_problem ----------------------------------------------------------------------------------------


@pytest.fixture
def problem() -> Problem:
    return to_problem(PlanRequest.model_validate(bus_request()))


def test_sites_are_depots_visits_stops_labs_in_request_order(problem: Problem) -> None:
    assert [s.id for s in problem.sites] == ["station", "a", "b", "plaza", "yard-east", "yard-west", "lab"]
    assert problem.matrices["drive"].size == 7


def test_stops_areas_and_labs_carry_their_fields(problem: Problem) -> None:
    plaza = problem.task("plaza")
    assert isinstance(plaza, BusStop)
    assert plaza.max_dwell_s == 10800 and str(plaza.time_windows[0]) == "12:00-14:00" and plaza.people == 0
    assert {s.group for s in problem.stops} == {None, "yard"}
    compound = problem.areas[1]
    assert compound.polygon is not None and len(compound.polygon) == 4
    assert compound.location == pytest.approx((113.635, 34.752))  # the polygon's centroid
    lab = problem.site("lab")
    assert isinstance(lab, Lab) and str(lab.opening[0]) == "07:00-22:00"
    bus = problem.vehicle("bus-1")
    assert (bus.lanes, bus.seconds_per_person, bus.serves_stops, bus.serves_visits) == (2, 20, True, False)
    assert problem.max_sample_age_s == 4 * 3600
    assert problem.area_walk_m is None  # caller matrices: the library walks straight lines x 1.3


def test_stop_people_given_means_tubes_pooled_ten_to_one() -> None:
    request = bus_request()
    request["stops"][1]["people"] = 95
    stop = to_problem(PlanRequest.model_validate(request)).task("yard-east")
    assert stop.people == 95 and dict(stop.demand) == {"tubes": 10}


def test_area_walks_given_are_passed_on(problem: Problem) -> None:
    walk = np.array([[120.0, 900.0, 910.0], [800.0, 150.0, 90.0]])
    with_walks = to_problem(PlanRequest.model_validate(bus_request()), area_walk_m=walk)
    assert with_walks.area_walk_m is not None and with_walks.area_walk_m.tolist() == walk.tolist()


# -- plan document -------------------------------------------------------------------------------------


@pytest.fixture
def solved(problem: Problem) -> tuple[Problem, Plan]:
    """A hand-made plan: the bus serves the plaza (the school walks there) and yard-east (the
    compound), drops at the lab; the team makes visit a; visit b is left out."""
    stops = {s.id: s for s in problem.stops}
    people = {"plaza": 420, "yard-east": 900}
    sized = problem.replace(
        stops=[
            BusStop(s.id, s.location, people=people.get(s.id, 0), time_windows=s.time_windows, group=s.group,
                    max_dwell_s=s.max_dwell_s, demand={"tubes": math.ceil(people.get(s.id, 0) / 10)},
                    address=s.address)
            for s in stops.values()
        ]
    )
    evaluation = evaluate(sized, {"bus-1": ["yard-east", "plaza", "lab"], "team-1": ["a", "lab"]})
    coverage = (
        AreaCoverage("school", 420, "plaza", 35.5),
        AreaCoverage("compound", 900, "yard-east", 140.0),
    )
    plan = Plan(
        routes=evaluation.routes,
        unassigned=(Unassigned("b", Reason.FLEET_FULL, "no time left"),
                    Unassigned("yard-west", Reason.NOT_WORTH_SERVING, "its alternative is used", kind="stop")),
        violations=evaluation.violations,
        cost=evaluation.cost,
        coverage=coverage,
    )
    return sized, plan


def test_stop_steps_have_dwell_people_tubes_and_the_areas_they_serve(solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    doc = dump_document(plan_document(problem, plan))
    PlanDocument.model_validate(doc)  # the response model accepts it
    bus = next(r for r in doc["routes"] if r["vehicle_id"] == "bus-1")
    steps = {s["id"]: s for s in bus["steps"]}
    plaza = steps["plaza"]
    assert plaza["kind"] == "stop" and plaza["people"] == 420 and plaza["address"] == "Plaza gate"
    assert plaza["dwell_s"] == plaza["service_s"] == 600 + math.ceil(420 * 20 / 2)
    assert plaza["tubes"] == 42 and steps["yard-east"]["tubes"] == 90
    assert plaza["areas"] == [{"area_id": "school", "population": 420, "walk_m": 35.5}]
    assert plaza["time_windows"][0]["start"] == "12:00"


def test_lab_steps_say_what_was_delivered_and_how_old_the_oldest_sample_was(solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    doc = dump_document(plan_document(problem, plan))
    bus = next(r for r in doc["routes"] if r["vehicle_id"] == "bus-1")
    lab = next(s for s in bus["steps"] if s["kind"] == "lab")
    assert lab["delivered"] == {"tubes": 132}
    yard = next(s for s in bus["steps"] if s["id"] == "yard-east")
    assert lab["oldest_sample_age_s"] == pytest.approx(lab["start_s"] - yard["start_s"], abs=0.1)
    route = plan.route("bus-1")
    assert [s.kind for s in route.steps][-2] is StepKind.LAB


def test_document_has_coverage_with_locations_and_summary_totals(solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    doc = dump_document(plan_document(problem, plan))
    school, compound = doc["coverage"]
    assert school["covered"] and school["stop_id"] == "plaza" and school["location"] == [113.6252, 34.7551]
    assert school["stop_location"] == list(STOPS["plaza"])
    assert compound["polygon"] is not None and len(compound["polygon"]) == 4
    summary = doc["summary"]
    assert summary["people_covered"] == summary["people_total"] == 1320
    assert summary["lab_drops"] == 2 and summary["stops"] == 3 and summary["labs"] == 1
    assert summary["unassigned_by_reason"] == {"fleet_full": 1, "not_worth_serving": 1}
    assert summary["max_sample_age_limit_s"] == 4 * 3600
    stop_left = next(u for u in doc["unassigned"] if u["kind"] == "stop")
    assert stop_left["visit_id"] == "yard-west" and stop_left["location"] == list(STOPS["yard-west"])


def test_an_uncovered_area_has_its_reason_and_no_stop(solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    far = AreaCoverage("compound", 900, None, None, Reason.NO_STOP_IN_WALKING_RANGE, "nearest stop 1.2 km")
    doc = dump_document(plan_document(problem, Plan(plan.routes, plan.unassigned, plan.violations, plan.cost,
                                      coverage=(plan.coverage[0], far))))
    compound = doc["coverage"][1]
    assert compound["covered"] is False and compound["reason"] == "no_stop_in_walking_range"
    assert compound["stop_location"] is None
    assert doc["summary"]["people_covered"] == 420
    assert doc["summary"]["unassigned_by_reason"]["area:no_stop_in_walking_range"] == 1


# -- walks on the walk network -------------------------------------------------------------------------


def test_area_walks_come_from_the_networks_walk_profile(tmp_path: Any) -> None:
    from service.networks import NetworkRegistry
    from service.pipeline import network_area_walk
    from tests.routing.conftest import osm_file

    source = osm_file("aguascalientes.osm.pbf")
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}",
                        networks={"ags": str(source)}, workers=0)
    registry = NetworkRegistry(settings)
    a = registry.get("ags", "walk").arrays
    node = (float(a.lon[0]), float(a.lat[0]))
    request = bus_request(matrices=None, network="ags")
    request["stops"] = [{"id": "s-1", "location": [node[0] + 1e-4, node[1]]}]
    request["areas"] = [
        {"id": "near", "location": list(node), "population": 10},
        {"id": "off-the-map", "location": [node[0] + 0.5, node[1]], "population": 10},  # ~45 km away
    ]
    walk = network_area_walk(PlanRequest.model_validate(request), registry)
    assert walk is not None and walk.shape == (2, 1)
    assert 0 < walk[0, 0] < 2_000 and math.isinf(walk[1, 0])
    assert network_area_walk(PlanRequest.model_validate(bus_request(areas=[])), registry) is None


# -- the sample in data/ ---------------------------------------------------------------------------------

SAMPLE = Path(__file__).parents[2] / "data" / "buses-with-matrices.json"


def test_the_bus_sample_solves_from_the_command_line_with_nobody_dropped_silently(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    runner = CliRunner()
    plan = tmp_path / "plan.json"
    result = runner.invoke(app, ["solve", str(SAMPLE), "-o", str(plan), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    document = json.loads(plan.read_text())
    request = json.loads(SAMPLE.read_text())
    assert document["summary"]["feasible"] is True and document["violations"] == []
    # Every area is covered or says why; every visit and stop is routed or listed with a reason.
    coverage = {c["area_id"]: c for c in document["coverage"]}
    assert set(coverage) == {a["id"] for a in request["areas"]}
    assert all(c["covered"] or c["reason"] for c in coverage.values())
    routed = {s["id"] for r in document["routes"] for s in r["steps"] if s["kind"] in ("visit", "stop")}
    left_out = {u["visit_id"] for u in document["unassigned"]}
    assert {v["id"] for v in request["visits"]} <= routed | left_out
    assert {c["stop_id"] for c in coverage.values() if c["covered"]} <= routed
    # Samples reach the lab in time.
    limit = document["summary"]["max_sample_age_limit_s"]
    ages = [s["oldest_sample_age_s"] for r in document["routes"] for s in r["steps"] if s["kind"] == "lab"]
    assert all(age is None or age <= limit for age in ages)
    geojson = tmp_path / "plan.geojson"
    result = runner.invoke(app, ["export", str(plan), "--format", "geojson", "-o", str(geojson)])
    assert result.exit_code == 0, result.output
    features = json.loads(geojson.read_text())["features"]
    assert {f["properties"]["feature"] for f in features} >= {"route", "stop", "area", "catchment"}
