"""Safe retries: ``Idempotency-Key`` on plan submissions and re-plans, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.auth import Keys, Role
from service.config import Settings
from service.idempotency import IdempotencyRecord, fingerprint_of
from service.idempotency import Keys as IdempotencyKeys
from service.main import create_app
from service.store import Store, utcnow
from tests.service.conftest import small_request, wait_for


@pytest.fixture
def client(make_settings: Callable[..., Settings], database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(database_url))) as client:
        yield client


def test_the_same_submission_twice_with_one_key_is_one_plan(client: TestClient) -> None:
    first = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "day-2026-12-02"})
    assert first.status_code == 202
    again = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "day-2026-12-02"})
    assert again.status_code == 202
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert client.get("/v1/plans").json()["count"] == 1
    other = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "day-2026-12-03"})
    assert other.json()["id"] != first.json()["id"]  # another key is another request


def test_the_same_body_written_differently_is_the_same_request(client: TestClient) -> None:
    body = small_request()
    first = client.post("/v1/plans", json=body, headers={"Idempotency-Key": "k"})
    reordered = dict(reversed(list(body.items())))
    again = client.post("/v1/plans", content=json.dumps(reordered, indent=2),
                        headers={"Idempotency-Key": "k", "content-type": "application/json"})
    assert again.json()["id"] == first.json()["id"]


def test_a_different_body_with_a_used_key_is_409_saying_so(client: TestClient) -> None:
    client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "k-1"})
    response = client.post("/v1/plans", json=small_request(name="another day"), headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 409
    assert "already used with a different body" in response.json()["detail"]
    assert client.get("/v1/plans").json()["count"] == 1


def test_a_refused_request_frees_its_key_for_the_corrected_one(client: TestClient) -> None:
    bad = small_request(vehicles=[{"id": "team-1", "start_depot": "nowhere", "shift": {"start": 0, "end": 100}}])
    assert client.post("/v1/plans", json=bad, headers={"Idempotency-Key": "k-2"}).status_code == 422
    fixed = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "k-2"})
    assert fixed.status_code == 202


def test_a_replan_sent_twice_with_one_key_is_one_new_version(client: TestClient) -> None:
    plan_id = client.post("/v1/plans", json=small_request()).json()["id"]
    wait_for(client, plan_id, {"done"})
    first = client.post(f"/v1/plans/{plan_id}/replan", json={"now": "10:00"}, headers={"Idempotency-Key": "r-1"})
    assert first.status_code == 202, first.text
    again = client.post(f"/v1/plans/{plan_id}/replan", json={"now": "10:00"}, headers={"Idempotency-Key": "r-1"})
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get(f"/v1/plans/{plan_id}/versions").json()["data"]) == 2
    moved = client.post(f"/v1/plans/{plan_id}/replan", json={"now": "11:00"}, headers={"Idempotency-Key": "r-1"})
    assert moved.status_code == 409


def test_a_key_is_replayed_only_to_the_api_key_that_used_it(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, auth="required")
    with TestClient(create_app(settings)) as client:
        keys = Keys(Store.from_url(settings.resolved_database_url))
        _, a = keys.create(role=Role.INTEGRATOR, organisation="health-codes")
        _, b = keys.create(role=Role.INTEGRATOR, organisation="health-codes")
        first = client.post("/v1/plans", json=small_request(), headers={"X-API-Key": a, "Idempotency-Key": "same"})
        other = client.post("/v1/plans", json=small_request(),
                            headers={"Authorization": f"Bearer {b}", "Idempotency-Key": "same"})
        assert first.status_code == other.status_code == 202
        assert first.json()["id"] != other.json()["id"]
        anonymous = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "same"})
        assert anonymous.status_code == 401  # no key: nothing is replayed to it


def test_a_key_held_by_a_request_that_died_is_freed(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    keys = IdempotencyKeys(store, ttl_s=86_400)
    body = json.dumps(small_request()).encode()
    assert keys.reserve("open", "k-3", "POST /v1/plans", fingerprint_of(body)) is None  # it never answered
    held = client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "k-3"})
    assert held.status_code == 409 and "still being processed" in held.json()["detail"]
    with store.transaction() as session:  # ... and then its server died, eleven minutes ago
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(minutes=11)))
    assert client.post("/v1/plans", json=small_request(), headers={"Idempotency-Key": "k-3"}).status_code == 202
