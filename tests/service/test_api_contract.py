"""What the fuzzing of the OpenAPI document found, as plain cases, and the one clock format:
times are written ``"29:00"`` everywhere (answers and messages) and read in both forms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from routing.model import Priority, TimeWindow, format_clock
from service.config import Settings
from service.main import create_app
from service.schemas import VisitIn, parse_time
from tests.service.conftest import FAKES, small_request, wait_for


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("contract")
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", networks={}, workers=1,
                        poll_s=0.05, solve_function=f"{FAKES}:quick_solve")
    with TestClient(create_app(settings)) as client:
        yield client


def night_request() -> dict[str, Any]:
    """A night shift, 20:00 to 05:00 the next day, whose two visits fall after midnight."""
    request = small_request(options={"time_limit_s": 1})
    request["vehicles"][0]["shift"] = {"start": "20:00", "end": "05:00+1d"}
    request["visits"][0]["time_windows"] = [{"start": "25:00", "end": "26:00"}]
    return request


# -- one clock format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("08:00", 28_800), ("29:00", 104_400), ("05:00+1d", 104_400), ("29:00:30", 104_430),
     ("05:00:30+1d", 104_430), (" 07:30 ", 27_000), ("168:00", 604_800), ("00:00+7d", 604_800),
     (104_400, 104_400), (104_400.0, 104_400)],
)
def test_both_clock_formats_are_read(text: str | float, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize(
    "text", ["24:00+1d", "05:00+8d", "01:00+7d", "168:01", "169:00", "5:0", "05:60", "٠٥:00", "05:00 +1d"]
)
def test_a_clock_outside_the_documented_pattern_or_horizon_is_a_422_naming_the_field(
    client: TestClient, text: str
) -> None:
    request = small_request()
    request["vehicles"][0]["shift"]["end"] = text
    response = client.post("/v1/plans", json=request)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "vehicles", 0, "shift", "end"]


def test_times_past_midnight_are_written_with_hours_past_24_in_messages_too() -> None:
    assert format_clock(104_400) == "29:00"
    assert format_clock(104_459.9) == "29:00"
    assert str(TimeWindow(72_000, 104_400)) == "20:00-29:00"


def test_a_night_shift_sent_in_either_format_comes_back_in_one(client: TestClient) -> None:
    response = client.post("/v1/plans", json=night_request())
    assert response.status_code == 202, response.text
    plan = wait_for(client, response.json()["id"], {"done"})["plan"]
    [route] = plan["routes"]
    assert route["end"] > "24:00"  # as text: hours past 24 sort after the evening
    clocks = [step[key] for step in route["steps"] for key in ("arrival", "start", "departure") if step.get(key)]
    assert any(c.startswith("25:") for c in clocks), clocks
    assert not any("+" in c for c in clocks), clocks


def test_an_evaluated_order_that_breaks_a_night_window_says_so_in_the_same_format(client: TestClient) -> None:
    request = night_request()
    request["visits"][1]["time_windows"] = [{"start": "20:00", "end": "20:01"}]
    response = client.post("/v1/evaluate", json={"problem": request, "routes": {"team-1": ["a", "b"]}})
    assert response.status_code == 200, response.text
    messages = [v["message"] for v in response.json()["plan"]["violations"]]
    assert messages and all("+1d" not in m for m in messages), messages
    assert any("20:00-20:01" in m for m in messages), messages


# -- what schemathesis found --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/plans?offset=122492060734463751385758746804224", "offset"),
     ("/v1/plans?limit=9223372036854775808", "limit"),
     ("/v1/plans?offset=-1", "offset")],
)
def test_integers_out_of_range_in_a_query_are_a_422_naming_them(client: TestClient, path: str, field: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [("post", "/v1/plans", "create_plan"), ("post", "/v1/evaluate", "evaluate_routes"),
     ("post", "/v1/matrix", "create_matrix"), ("post", "/v1/plans/{plan_id}/replan", "replan"),
     ("post", "/v1/plans/{plan_id}/events", "record_event"), ("post", "/v1/requests/from-csv", "request_from_csv")],
)
def test_a_body_that_is_not_utf8_is_a_documented_400(client: TestClient, method: str, path: str,
                                                     operation: str) -> None:
    response = client.request(method, path.format(plan_id="nope"), content=b"\xff\xfe{",
                              headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    documented = client.get("/openapi.json").json()["paths"][path][method]
    assert documented["operationId"] == operation
    assert "400" in documented["responses"]


@pytest.mark.parametrize(("method", "path"), [("get", "/v1/networks"), ("get", "/v1/networks/{name}/streets"),
                                              ("post", "/v1/matrix")])
def test_a_malformed_authorization_header_is_a_documented_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path.format(name="x"), headers={"Authorization": "Basic eA=="}, json={})
    assert response.status_code == 401, response.text
    assert "401" in client.get("/openapi.json").json()["paths"][path][method]["responses"]


def test_a_replan_that_waits_documents_its_200(client: TestClient) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/v1/plans/{plan_id}/replan"]["post"]["responses"]
    assert {"200", "202"} <= set(responses)
    assert responses["202"]["links"]["GetPlan"] == {
        "operationId": "get_plan", "parameters": {"plan_id": "$response.body#/id"},
        "description": responses["202"]["links"]["GetPlan"]["description"]}


@pytest.mark.parametrize(("priority", "name"), [(2.0, "quarantine"), (3, "urgent"), ("vulnerable", "vulnerable")])
def test_a_priority_is_read_as_its_schema_allows_it(priority: object, name: str) -> None:
    visit = VisitIn.model_validate({"id": "v", "location": [24.9, 60.1], "priority": priority})
    assert visit.priority is Priority[name.upper()]


def test_a_location_documents_the_bounds_it_is_checked_against(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    location = document["components"]["schemas"]["DepotIn"]["properties"]["location"]
    assert [(b["minimum"], b["maximum"]) for b in location["prefixItems"]] == [(-180, 180), (-90, 90)]
    response = client.post("/v1/plans", json=small_request(depots=[{"id": "station", "location": [200, 34.75]}]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "depots", 0, "location"]
