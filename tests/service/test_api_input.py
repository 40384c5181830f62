"""Bad input never reaches a worker: every case answers 4xx naming the field, never 500."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.service.conftest import small_request


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("input")
    settings = Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'doorstep.db'}",
        networks={},
        workers=0,  # nothing is solved here
        max_visits=5,
        max_vehicles=3,
        max_body_bytes=50_000,
        max_time_limit_s=60,
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


def _visits(n: int) -> Mutation:
    def mutate(request: dict[str, Any]) -> None:
        request["matrices"] = None
        request["network"] = None
        request["visits"] = [{"id": f"v{i}", "location": [113.6, 34.7]} for i in range(n)]

    return mutate


def _drop_matrices(request: dict[str, Any]) -> None:
    request.pop("matrices")


CASES = [
    # (mutation, status, loc, words in the message)
    pytest.param(_set(("visits", 1, "id"), "a"), 422, ["body", "visits", 1, "id"], 'id "a" is used twice',
                 id="duplicate visit id"),
    pytest.param(_set(("vehicles", 0, "start_depot"), "garage"), 422, ["body", "vehicles", 0, "start_depot"],
                 'start_depot "garage" is not a depot', id="unknown depot"),
    pytest.param(_set(("visits", 0, "location"), [200.0, 34.7]), 422, ["body", "visits", 0, "location"],
                 "longitude must be within [-180, 180]", id="longitude out of range"),
    pytest.param(_set(("visits", 0, "location"), [34.7, 113.6]), 422, ["body", "visits", 0, "location"],
                 "are they swapped", id="lat lon swapped"),
    pytest.param(_set(("visits", 0, "time_windows"), [{"start": "11:00", "end": "09:00"}]), 422,
                 ["body", "visits", 0, "time_windows", 0], "ends (09:00) before it starts (11:00)",
                 id="window ends before it starts"),
    pytest.param(_set(("vehicles", 0, "shift"), {"start": "16:00", "end": "08:00"}), 422,
                 ["body", "vehicles", 0, "shift"], 'Vehicle "team-1": shift', id="shift ends before it starts"),
    pytest.param(_set(("visits", 0, "time_windows"), [{"start": "9 am", "end": "10:00"}]), 422,
                 ["body", "visits", 0, "time_windows", 0, "start"], '"HH:MM"', id="unreadable time"),
    pytest.param(_set(("visits", 0, "people"), -2), 422, ["body", "visits", 0, "people"],
                 "greater than or equal to 0", id="negative people"),
    pytest.param(_set(("visits", 1, "demand"), {"tubes": -1}), 422, ["body", "visits", 1, "demand", "tubes"],
                 "greater than or equal to 0", id="negative demand"),
    pytest.param(_set(("visits", 0, "priority"), "vip"), 422, ["body", "visits", 0, "priority"],
                 "priority must be one of routine", id="unknown priority"),
    pytest.param(_set(("visits", 1, "required"), False), 422, ["body", "visits", 1, "penalty"],
                 "optional visit needs a penalty", id="optional visit without penalty"),
    pytest.param(_set(("visits", 0, "time_window"), []), 422, ["body", "visits", 0, "time_window"],
                 "Extra inputs are not permitted", id="misspelt field"),
    pytest.param(_set(("matrices", "drive", "durations_s"), [[0, 1], [1, 0]]), 422,
                 ["body", "matrices", "drive"], "differ in size", id="matrix sizes differ"),
    pytest.param(_set(("matrices", "drive", "durations_s", 0, 1), -5), 422,
                 ["body", "matrices", "drive", "durations_s", 0, 1], "must be >= 0", id="negative travel time"),
    pytest.param(_set(("vehicles", 0, "profile"), "walk"), 422, ["body", "vehicles", 0, "profile"],
                 'no travel matrix for profile "walk"', id="no matrix for the profile"),
    pytest.param(_set(("options", "time_limit_s"), 600), 422, ["body", "options", "time_limit_s"],
                 "allows at most 60 s", id="time limit over the maximum"),
    pytest.param(_set(("options", "engine"), "gurobi"), 422, ["body", "options", "engine"],
                 "'auto', 'ortools', 'pyvrp' or 'vroom'", id="unknown engine"),
    # With matrices, a network only draws the routes: it must still be one the server has.
    pytest.param(_set(("network",), "helsinki"), 422, ["body", "network"], 'unknown network "helsinki"',
                 id="matrices and an unknown network"),
    pytest.param(_drop_matrices, 422, ["body", "network"], "no road network: give `matrices`",
                 id="no matrices and no network on the server"),
    pytest.param(_visits(6), 422, ["body", "visits"], "6 visits is more than this server plans at once (5)",
                 id="too many visits"),
    pytest.param(_set(("depots",), []), 422, ["body", "depots"], "at least 1 item", id="no depot"),
    pytest.param(_set(("objective",), {"makespan_cost_per_s": -1}), 422, ["body", "objective", "makespan_cost_per_s"],
                 "greater than or equal to 0", id="negative makespan cost"),
]


@pytest.mark.parametrize(("mutate", "status", "loc", "message"), CASES)
def test_bad_input_is_a_4xx_naming_the_field(
    client: TestClient, mutate: Mutation, status: int, loc: list[Any], message: str
) -> None:
    request = copy.deepcopy(small_request())
    mutate(request)
    response = client.post("/v1/plans", json=request)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert any(d["loc"] == loc and message in d["msg"] for d in detail), detail
    assert "138-0000-0000" not in response.text  # personal data is not echoed back


def test_the_good_request_beside_them_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/plans", json=small_request())
    assert response.status_code == 202, response.text
    assert response.headers["location"] == response.json()["url"]


def test_a_visit_needing_a_skill_no_vehicle_has_is_not_an_input_error(client: TestClient) -> None:
    request = small_request()
    request["visits"][0]["skills"] = ["paediatric"]
    assert client.post("/v1/plans", json=request).status_code == 202


def test_too_many_vehicles(client: TestClient) -> None:
    request = small_request()
    request["vehicles"] = [dict(request["vehicles"][0], id=f"t{i}") for i in range(4)]
    response = client.post("/v1/plans", json=request)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "vehicles"]


def test_a_body_over_the_size_limit_is_413(client: TestClient) -> None:
    request = small_request()
    request["visits"][0]["notes"] = "x" * 60_000
    response = client.post("/v1/plans", json=request)
    assert response.status_code == 413
    assert "limit is 50000 bytes" in response.json()["detail"]


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/plans", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/plans/nope", 404),
        ("/v1/plans/nope/routes/team-1", 404),
        ("/v1/plans/nope.geojson", 404),
        ("/v1/plans?limit=0", 422),
        ("/v1/plans?status=lost", 422),
    ],
)
def test_unknown_plans_and_bad_queries(client: TestClient, path: str, status: int) -> None:
    assert client.get(path).status_code == status


def test_matrix_needs_a_network(client: TestClient) -> None:
    response = client.post("/v1/matrix", json={"points": [[113.6, 34.7]]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "network"]
