"""Keys and roles: who may call what (401 without a usable key, 403 for a role that may not),
organisations kept apart, personal data only for those allowed, and the `doorstep keys` CLI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.auth import Keys, Role
from service.cli import app as cli
from service.config import Settings, get_settings
from service.main import create_app
from service.store import Store
from tests.service.conftest import small_request
from tests.service.test_field import CONTACT, CREW_NOTE, NOTE, line_request

MakeSettings = Callable[..., Settings]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Fleet:
    """A running app in ``required`` mode with one key per role, and a solved plan of org "north"."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        store: Store = client.app.state.store  # type: ignore[attr-defined]
        keys = Keys(store)
        make = keys.create
        self.dispatcher = make(role=Role.DISPATCHER, organisation="north")[1]
        self.integrator = make(role=Role.INTEGRATOR, organisation="north")[1]
        self.granted = make(role=Role.INTEGRATOR, organisation="north", can_read_personal=True)[1]
        self.south = make(role=Role.DISPATCHER, organisation="south")[1]
        response = client.post("/v1/plans?wait=true", json=line_request(visits=3), headers=bearer(self.dispatcher))
        assert response.status_code == 200, response.text
        self.plan_id = response.json()["id"]
        self.crew1 = make(role=Role.CREW, organisation="north", vehicle_id="t1", plan_id=self.plan_id)[1]
        self.crew2 = make(role=Role.CREW, organisation="north", vehicle_id="t2", plan_id=self.plan_id)[1]
        self.keys = keys


@pytest.fixture
def fleet(sqlite_url: str, make_settings: MakeSettings) -> Iterator[Fleet]:
    with TestClient(create_app(make_settings(sqlite_url, auth="required"))) as client:
        yield Fleet(client)


def test_calls_without_a_usable_key_are_401(fleet: Fleet) -> None:
    client = fleet.client
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "an API key is required"),
        (bearer("dsk_00000000_nope"), "unknown API key"),
        (bearer("not-a-key"), "malformed API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"X-API-Key": "dsk_00000000_nope"}, "unknown API key"),
    ]
    for headers, message in cases:
        response = client.get("/v1/plans", headers=headers)
        assert response.status_code == 401, headers
        assert message in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").status_code == 200  # health needs no key


def test_a_key_revoked_by_another_process_is_401_within_the_key_cache_time(
    sqlite_url: str, make_settings: MakeSettings
) -> None:
    # The CLI revokes in its own process: the API knows a key it checked for key_cache_s seconds.
    with TestClient(create_app(make_settings(sqlite_url, auth="required", key_cache_s=0.5))) as client:
        keys = Keys(client.app.state.store)  # type: ignore[attr-defined]
        token = keys.create(role=Role.INTEGRATOR, organisation="north")[1]
        assert client.get("/v1/plans", headers={"X-API-Key": token}).status_code == 200
        keys.revoke(token.split("_")[1])
        time.sleep(0.6)
        response = client.get("/v1/plans", headers={"X-API-Key": token})
        assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_with_no_key_cache_a_revoked_key_is_401_at_once(sqlite_url: str, make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(sqlite_url, auth="required", key_cache_s=0))) as client:
        keys = Keys(client.app.state.store)  # type: ignore[attr-defined]
        token = keys.create(role=Role.INTEGRATOR, organisation="north")[1]
        assert client.get("/v1/plans", headers={"X-API-Key": token}).status_code == 200
        keys.revoke(token.split("_")[1])
        response = client.get("/v1/plans", headers={"X-API-Key": token})
        assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_crew_link_revoked_through_the_api_is_401_at_once(fleet: Fleet) -> None:
    client, headers = fleet.client, bearer(fleet.dispatcher)
    link = client.post(f"/v1/plans/{fleet.plan_id}/crew-links", json={"vehicle_id": "t1"}, headers=headers)
    assert link.status_code == 201, link.text
    token, prefix = link.json()["url"].partition("#key=")[2], link.json()["prefix"]
    assert client.get(f"/v1/plans/{fleet.plan_id}/routes/t1", headers=bearer(token)).status_code == 200
    revoked = client.delete(f"/v1/plans/{fleet.plan_id}/crew-links/{prefix}", headers=headers)
    assert revoked.status_code == 200, revoked.text
    response = client.get(f"/v1/plans/{fleet.plan_id}/routes/t1", headers=bearer(token))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_dispatcher_does_everything_in_their_organisation(fleet: Fleet) -> None:
    client, plan_id, headers = fleet.client, fleet.plan_id, bearer(fleet.dispatcher)
    step = client.get(f"/v1/plans/{plan_id}", headers=headers).json()["plan"]["routes"][0]["steps"][1]
    assert step["notes"] == NOTE and step["contact"] == CONTACT
    for method, path, body in [
        ("get", "/v1/plans", None),
        ("get", f"/v1/plans/{plan_id}/progress", None),
        ("get", f"/v1/plans/{plan_id}/versions", None),
        ("get", f"/v1/plans/{plan_id}/carry-over", None),
        ("get", f"/v1/plans/{plan_id}/routes/t1", None),
        ("post", f"/v1/plans/{plan_id}/events", {"vehicle_id": "t1", "step_id": "v1", "outcome": "refused",
                                                 "at": "09:00"}),
        ("post", "/v1/evaluate", {"plan_id": plan_id, "routes": {"t1": ["v1"]}}),
        ("post", f"/v1/plans/{plan_id}/replan", {"now": "09:00"}),
    ]:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code < 300, (path, response.text)


def test_other_organisations_plans_do_not_exist_for_a_key(fleet: Fleet) -> None:
    client, plan_id, headers = fleet.client, fleet.plan_id, bearer(fleet.south)
    assert client.get(f"/v1/plans/{plan_id}", headers=headers).status_code == 404
    assert client.get(f"/v1/plans/{plan_id}/progress", headers=headers).status_code == 404
    assert client.get("/v1/plans", headers=headers).json()["count"] == 0


def test_a_crew_reads_only_its_own_route_and_records_only_its_outcomes(fleet: Fleet) -> None:
    client, plan_id = fleet.client, fleet.plan_id
    own = client.get(f"/v1/plans/{plan_id}/routes/t1", headers=bearer(fleet.crew1))
    assert own.status_code == 200
    assert own.json()["steps"][1]["notes"] == NOTE  # the assigned crew sees its residents' notes
    assert client.get(f"/v1/plans/{plan_id}/routes/t1.csv", headers=bearer(fleet.crew1)).status_code == 200
    other = client.get(f"/v1/plans/{plan_id}/routes/t1", headers=bearer(fleet.crew2))
    assert other.status_code == 403
    assert other.json()["detail"] == 'this crew key belongs to vehicle "t2": it may not reach vehicle "t1"'
    assert client.get(f"/v1/plans/{plan_id}/routes/t1.gpx", headers=bearer(fleet.crew2)).status_code == 403
    done = {"vehicle_id": "t1", "step_id": "v1", "outcome": "done", "at": "09:00", "people_sampled": 2,
            "note": CREW_NOTE}
    assert client.post(f"/v1/plans/{plan_id}/events", json=done, headers=bearer(fleet.crew1)).status_code == 201
    forged = client.post(f"/v1/plans/{plan_id}/events", json=done, headers=bearer(fleet.crew2))
    assert forged.status_code == 403 and "t2" in forged.json()["detail"]
    events = client.get(f"/v1/plans/{plan_id}/events", headers=bearer(fleet.dispatcher)).json()["data"]
    assert events[0]["actor"] == f"crew:{fleet.crew1.split('_')[1]}"
    for method, path in [("get", f"/v1/plans/{plan_id}"), ("get", "/v1/plans"),
                         ("get", f"/v1/plans/{plan_id}/progress"), ("post", f"/v1/plans/{plan_id}/replan"),
                         ("get", f"/v1/plans/{plan_id}.geojson"), ("post", "/v1/evaluate"),
                         ("post", "/v1/plans")]:
        response = client.request(method, path, json={}, headers=bearer(fleet.crew1))
        assert response.status_code == 403, path
        assert response.json()["detail"].startswith("a crew key may not do this: it needs the role")


def test_an_integrator_submits_and_reads_without_personal_data_unless_granted(fleet: Fleet) -> None:
    client, plan_id = fleet.client, fleet.plan_id
    client.post(f"/v1/plans/{plan_id}/events", headers=bearer(fleet.dispatcher),
                json={"vehicle_id": "t1", "step_id": "v1", "outcome": "not_home", "at": "09:00", "note": CREW_NOTE})
    created = client.post("/v1/plans", json=small_request(), headers=bearer(fleet.integrator))
    assert created.status_code == 202
    for key, sees in ((fleet.integrator, False), (fleet.granted, True)):
        headers = bearer(key)
        texts = [client.get(path, headers=headers) for path in (
            f"/v1/plans/{plan_id}", f"/v1/plans/{plan_id}/progress", f"/v1/plans/{plan_id}/events",
            f"/v1/plans/{plan_id}/carry-over", f"/v1/plans/{plan_id}.geojson", f"/v1/plans/{plan_id}/routes/t1.csv")]
        assert all(r.status_code == 200 for r in texts), [r.text for r in texts if r.status_code != 200]
        for secret in (NOTE, CONTACT, CREW_NOTE):
            assert any(secret in r.text for r in texts) is sees, (key, secret)
        assert "Katu 1" in texts[0].text  # addresses are not withheld: crews and integrators route by them
    for method, path, body in [
        ("post", f"/v1/plans/{plan_id}/replan", {"now": "09:00"}),
        ("post", f"/v1/plans/{plan_id}/events", {"vehicle_id": "t1", "step_id": "v1", "outcome": "refused",
                                                 "at": "09:00"}),
    ]:
        response = client.request(method, path, json=body, headers=bearer(fleet.integrator))
        assert response.status_code == 403, path
        assert "integrator key may not do this" in response.json()["detail"]


def test_auto_mode_is_open_on_loopback_until_the_first_key(sqlite_url: str, make_settings: MakeSettings) -> None:
    app = create_app(make_settings(sqlite_url, auth="auto"))
    with TestClient(app, client=("127.0.0.1", 50000)) as local, TestClient(app, client=("10.1.2.3", 50000)) as remote:
        assert local.get("/v1/plans").status_code == 200
        assert remote.get("/v1/plans").status_code == 401  # another machine always needs a key
        _, token = Keys(app.state.store).create(role=Role.DISPATCHER, organisation="default")
        assert local.get("/v1/plans").status_code == 401  # a key exists: no more open access
        assert local.get("/v1/plans", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"role": Role.CREW}, "needs --vehicle"),
        ({"role": Role.CREW, "vehicle_id": "t1"}, "needs --plan"),  # vehicle ids are reused every day
        ({"role": Role.DISPATCHER, "vehicle_id": "t1"}, "only crew keys"),
        ({"role": Role.INTEGRATOR, "plan_id": "p1"}, "only crew keys"),
        ({"role": Role.INTEGRATOR, "organisation": " "}, "organisation"),
    ],
)
def test_inconsistent_keys_are_refused(sqlite_url: str, fields: dict[str, Any], message: str) -> None:
    from service.store import migrate

    store = Store.from_url(sqlite_url)
    migrate(store.engine)
    try:
        with pytest.raises(ValueError, match=message):
            Keys(store).create(**{"organisation": "north", **fields})
    finally:
        store.close()


def test_keys_are_created_listed_and_revoked_with_the_cli(
    sqlite_url: str, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(cli, ["keys", "create", "--role", "integrator", "--org", "north"])
        assert created.exit_code == 0, created.output
        token = created.stdout.strip().splitlines()[-1]
        assert token.startswith("dsk_")
        prefix = token.split("_")[1]
        listed = runner.invoke(cli, ["keys", "list"])
        assert prefix in listed.output and token not in listed.output  # the secret is shown once
        with TestClient(create_app(make_settings(sqlite_url, auth="required", key_cache_s=0.3))) as client:
            assert client.get("/v1/plans", headers=bearer(token)).status_code == 200
            revoked = runner.invoke(cli, ["keys", "revoke", prefix])
            assert revoked.exit_code == 0 and "refuse it within 5 s" in " ".join(revoked.output.split())
            time.sleep(0.3)  # the API's key_cache_s
            assert client.get("/v1/plans", headers=bearer(token)).status_code == 401
        assert runner.invoke(cli, ["keys", "revoke", "ffffffff"]).exit_code == 2
        bad = runner.invoke(cli, ["keys", "create", "--role", "crew", "--org", "north"])
        assert bad.exit_code == 2 and "--vehicle" in bad.output
        unbound = runner.invoke(cli, ["keys", "create", "--role", "crew", "--org", "north", "--vehicle", "t1"])
        assert unbound.exit_code == 2 and "--plan" in unbound.output
    finally:
        get_settings.cache_clear()
