"""Hostile input, as an attacker or a careless integrator sends it (issue 13): every case answers
4xx naming the field or works, never a 500 and never a job that fails later. Also the access
rules the same probe found open: cancelling is a dispatcher's act, and ``auto`` mode stays
closed once a key has existed."""

from __future__ import annotations

import copy
import logging
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth import Keys, Role
from service.config import Settings
from service.main import create_app
from tests.service.conftest import FAKES, small_request, wait_for

MakeSettings = Callable[..., Settings]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("hostile")
    settings = Settings(
        data_dir=tmp, database_url=f"sqlite:///{tmp / 'doorstep.db'}", networks={}, workers=1,
        poll_s=0.05, heartbeat_s=0.2, default_time_limit_s=1, max_time_limit_s=60,
        solve_function=f"{FAKES}:quick_solve", max_visits=5, max_evaluate_steps=50,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(request: dict[str, Any]) -> None:
        target = request
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        target[path[-1]] = value

    return mutate


NUMBERS = [
    # (field, value, words in the message): numbers the engines' int64 costs cannot take.
    # 1e308 per second made a plan of infinite cost that answered 500 on every read.
    pytest.param(("objective", "duration_cost_per_s"), 1e308, "less than or equal to 10000", id="duration cost 1e308"),
    pytest.param(("objective", "distance_cost_per_m"), 1e20, "less than or equal to 10000", id="distance cost 1e20"),
    # 1e300 was accepted and the job failed with an internal error.
    pytest.param(("objective", "makespan_cost_per_s"), 1e300, "less than or equal to 10000", id="makespan cost 1e300"),
    pytest.param(("objective", "unassigned_penalty"), 10**20, "less than or equal to 1000000000",
                 id="unassigned penalty 1e20"),
    pytest.param(("objective", "priority_factor"), 1e6, "less than or equal to 10", id="priority factor 1e6"),
    # Demand or capacity of 10**20 was accepted and the job failed.
    pytest.param(("visits", 1, "demand"), {"tubes": 10**20}, "less than or equal to 1000000000", id="demand 1e20"),
    pytest.param(("vehicles", 0, "capacity"), {"tubes": 10**20}, "less than or equal to 1000000000",
                 id="capacity 1e20"),
    pytest.param(("vehicles", 0, "fixed_cost"), 10**19, "less than or equal to 1000000000", id="fixed cost 1e19"),
    pytest.param(("visits", 0, "per_person_s"), 10**12, "less than or equal to 3600", id="per person 1e12 s"),
    # Travel times are divided by it: 1e-10 made them 1e17 s, and their costs overflowed.
    pytest.param(("vehicles", 0, "speed_factor"), 1e-10, "greater than or equal to 0.1", id="speed factor 1e-10"),
    # A sentinel for "no road" (1e9, or Infinity) would overflow the arc costs: null means no path.
    pytest.param(("matrices", "drive", "durations_s", 0, 1), 1e9, "null: no path", id="travel time 1e9 s"),
    pytest.param(("matrices", "drive", "distances_m", 0, 1), 1e300, "null: no path", id="distance 1e300 m"),
]


@pytest.mark.parametrize(("path", "value", "message"), NUMBERS)
def test_numbers_the_engines_cannot_take_are_422_naming_the_field(
    client: TestClient, path: tuple[Any, ...], value: Any, message: str
) -> None:
    request = copy.deepcopy(small_request())
    _set(path, value)(request)
    response = client.post("/v1/plans", json=request)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    loc = ["body", *path] + (list(value) if isinstance(value, dict) else [])
    assert any(d["loc"] == loc and message in d["msg"] for d in detail), detail


def test_the_largest_accepted_numbers_are_solved(client: TestClient) -> None:
    # Beside the cases above: the bounds themselves plan, and the plan's cost is finite.
    request = small_request(objective={"duration_cost_per_s": 10_000, "makespan_cost_per_s": 10_000,
                                       "unassigned_penalty": 10**9, "priority_factor": 10})
    request["vehicles"][0]["capacity"] = {"tubes": 10**9}
    request["visits"][1]["demand"] = {"tubes": 10**9}
    response = client.post("/v1/plans?wait=true", json=request)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    plan_id = response.json()["id"]
    assert client.get(f"/v1/plans/{plan_id}.geojson").status_code == 200


@pytest.mark.parametrize(
    ("query", "loc", "message"),
    [
        # 10**30 overflowed the database's integer: 500.
        ({"offset": 10**30}, ["query", "offset"], "less than or equal to 1000000000"),
        ({"offset": -1}, ["query", "offset"], "greater than or equal to 0"),
        ({"limit": 10**6}, ["query", "limit"], "less than or equal to 200"),
    ],
)
def test_paging_out_of_range_is_422(client: TestClient, query: dict[str, int], loc: list[str], message: str) -> None:
    response = client.get("/v1/plans", params=query)
    assert response.status_code == 422, response.text
    assert any(d["loc"] == loc and message in d["msg"] for d in response.json()["detail"])


def test_the_largest_offset_is_an_empty_page(client: TestClient) -> None:
    response = client.get("/v1/plans", params={"offset": 10**9})
    assert response.status_code == 200 and response.json()["data"] == []


@pytest.mark.parametrize(
    ("vehicle_id", "name", "fallback"),
    [
        ("车队-1", "车队-1", "__-1"),  # the field's own language: was a 500 (headers are Latin-1)
        ("équipe 2", "équipe_2", "_quipe_2"),
        ("team-1", "team-1", "team-1"),
        ('a"; filename=evil.sh', "a___filename_evil_sh", "a___filename_evil_sh"),  # stays inside its quotes
    ],
)
def test_exports_of_a_route_with_any_unicode_id_are_named_after_it(
    client: TestClient, vehicle_id: str, name: str, fallback: str
) -> None:
    request = small_request()
    request["vehicles"][0]["id"] = vehicle_id
    plan_id = client.post("/v1/plans", json=request).json()["id"]
    assert wait_for(client, plan_id, {"done", "failed"})["status"] == "done"
    for extension in ("csv", "gpx"):
        response = client.get(f"/v1/plans/{plan_id}/routes/{urllib.parse.quote(vehicle_id, safe='')}.{extension}")
        assert response.status_code == 200, response.text
        ascii_part, _, encoded = response.headers["content-disposition"].partition("; filename*=UTF-8''")
        assert ascii_part == f'attachment; filename="{fallback}.{extension}"'
        assert urllib.parse.unquote(encoded) == f"{name}.{extension}"


def _many_visits(n: int) -> dict[str, Any]:
    request = small_request()
    request.pop("matrices")
    request["visits"] = [{"id": f"v{i}", "location": [113.6, 34.7]} for i in range(n)]
    return request


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        # 100,000 steps held the API process for 27 s.
        ({"problem": small_request(), "routes": {"team-1": ["a", "b"] * 26}}, ["body", "routes"],
         "52 steps is more than this server evaluates at once (50)"),
        ({"problem": _many_visits(6), "routes": {"team-1": ["v0"]}}, ["body", "problem", "visits"],
         "6 visits is more than this server plans at once (5)"),
    ],
)
def test_evaluation_is_bounded_work(client: TestClient, body: dict[str, Any], loc: list[str], message: str) -> None:
    response = client.post("/v1/evaluate", json=body)
    assert response.status_code == 422, response.text
    assert any(d["loc"] == loc and message in d["msg"] for d in response.json()["detail"])


def test_an_evaluation_within_the_bounds_is_answered(client: TestClient) -> None:
    response = client.post("/v1/evaluate", json={"problem": small_request(), "routes": {"team-1": ["a", "b"] * 25}})
    assert response.status_code == 200, response.text
    assert response.json()["feasible"] is False  # every visit fifty times over


# -- errors ----------------------------------------------------------------------------------------


class _BrokenRunner:
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def cancel(self, plan_id: str) -> None: ...
    def health(self) -> dict[str, str]:
        return {"workers": "test"}

    def submit(self, plan_id: str) -> None:
        raise RuntimeError("queue is on fire")


def test_a_500_is_logged_once_and_ends_the_request_normally(
    sqlite_url: str, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # raise_server_exceptions stays on: an exception re-raised after the answer (which made the
    # server log it twice and drop the keep-alive connection) would fail this test here.
    app = create_app(make_settings(sqlite_url), runner=_BrokenRunner())
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        response = client.post("/v1/plans", json=small_request())
        assert response.status_code == 500
        assert client.get("/healthz").status_code == 200
    logged = [r for r in caplog.records if "queue is on fire" in str(r.exc_info and r.exc_info[1])]
    assert len(logged) == 1
    assert response.json()["request_id"] in logged[0].getMessage()


# -- access ----------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_only_a_dispatcher_cancels_a_solve(sqlite_url: str, make_settings: MakeSettings) -> None:
    settings = make_settings(sqlite_url, auth="required", solve_function=f"{FAKES}:sleepy_solve")
    with TestClient(create_app(settings)) as client:
        keys = Keys(client.app.state.store)  # type: ignore[attr-defined]
        dispatcher = keys.create(role=Role.DISPATCHER, organisation="north")[1]
        integrators = [keys.create(role=Role.INTEGRATOR, organisation="north", can_read_personal=granted)[1]
                       for granted in (False, True)]
        created = client.post("/v1/plans", json=small_request(options={"time_limit_s": 30}),
                              headers=bearer(integrators[0]))
        plan_id = created.json()["id"]
        crew = keys.create(role=Role.CREW, organisation="north", vehicle_id="team-1", plan_id=plan_id)[1]
        for token in [*integrators, crew]:
            response = client.delete(f"/v1/plans/{plan_id}", headers=bearer(token))
            assert response.status_code == 403, response.text
            assert "it needs the role dispatcher" in response.json()["detail"]
        assert client.get(f"/v1/plans/{plan_id}", headers=bearer(dispatcher)).json()["cancel_requested"] is False
        response = client.delete(f"/v1/plans/{plan_id}", headers=bearer(dispatcher))
        assert response.status_code == 200 and response.json()["cancel_requested"] is True


def test_auto_mode_stays_closed_after_the_last_key_is_revoked(sqlite_url: str, make_settings: MakeSettings) -> None:
    app = create_app(make_settings(sqlite_url, auth="auto"))
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/v1/plans").status_code == 200
        keys = Keys(app.state.store)
        info, token = keys.create(role=Role.DISPATCHER, organisation="default")
        keys.revoke(info.prefix)
        response = local.get("/v1/plans")
        assert response.status_code == 401 and "an API key is required" in response.json()["detail"]
    # A restarted server remembers it too: the revoked key's row is the record.
    with TestClient(create_app(make_settings(sqlite_url, auth="auto")), client=("127.0.0.1", 50000)) as local:
        assert local.get("/v1/plans").status_code == 401
        assert local.get("/v1/plans", headers=bearer(token)).status_code == 401  # and the key stays revoked
