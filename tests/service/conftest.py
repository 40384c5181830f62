"""Fixtures of the service tests: settings on a temporary database, SQLite or PostgreSQL.

PostgreSQL tests run when ``DOORSTEP_TEST_POSTGRES_URL`` names a reachable server, e.g.
``DOORSTEP_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test``; each test gets
a fresh schema (dropped afterwards), so runs never collide.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.config import Settings

POSTGRES_ENV = "DOORSTEP_TEST_POSTGRES_URL"
HOW_TO = (
    f"set {POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test (a reachable server) "
    "to run the PostgreSQL variant"
)


def _postgres_schema_url() -> Iterator[str]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: {HOW_TO}")
    schema = f"doorstep_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # unreachable, wrong credentials, no driver
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} is unreachable ({type(error).__name__}): {HOW_TO}")
    parsed = make_url(url)
    scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'doorstep.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'doorstep.db'}"


FAKES = "tests.service.fakes"


@pytest.fixture(scope="session", autouse=True)
def open_access() -> Iterator[None]:
    """Service tests call the API without keys (``DOORSTEP_AUTH=open``), except those of keys and
    roles (``test_auth.py``), which give ``auth`` to their Settings explicitly."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOORSTEP_AUTH", "open")
        yield


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test app: no road networks, one worker, short timings."""

    def make(database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": database_url,
            "networks": {},
            "workers": 1,
            "default_time_limit_s": 1.0,
            "max_time_limit_s": 60.0,
            "poll_s": 0.05,
            "heartbeat_s": 0.2,
            "stale_after_s": 3.0,
            "wait_grace_s": 20.0,
            "solve_function": f"{FAKES}:quick_solve",
        }
        values.update(overrides)
        return Settings(**values)

    return make


def small_request(**overrides: Any) -> dict[str, Any]:
    """Two home visits and one team over caller-supplied matrices (depot, a, b)."""
    request: dict[str, Any] = {
        "name": "two visits",
        "matrices": {
            "drive": {
                "durations_s": [[0, 300, 420], [310, 0, 240], [400, 250, 0]],
                "distances_m": [[0, 2500, 3600], [2550, 0, 1900], [3500, 2000, 0]],
            }
        },
        "depots": [{"id": "station", "location": [113.62, 34.75]}],
        "vehicles": [
            {
                "id": "team-1",
                "kind": "team",
                "start_depot": "station",
                "shift": {"start": "08:00", "end": "16:00"},
                "capacity": {"tubes": 40},
            }
        ],
        "visits": [
            {
                "id": "a",
                "location": [113.63, 34.76],
                "people": 2,
                "priority": "quarantine",
                "time_windows": [{"start": "09:00", "end": "11:00"}],
                "address": "Building 3, unit 2",
                "notes": "bedridden resident",
                "contact": "138-0000-0000",
            },
            {"id": "b", "location": [113.64, 34.75], "people": 3},
        ],
        "options": {"time_limit_s": 1},
    }
    request.update(overrides)
    return request


def wait_for(
    client: TestClient, plan_id: str, statuses: set[str], timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll the plan (with ``headers``, e.g. a key) until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/plans/{plan_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"plan {plan_id} never reached {statuses}; last: {body.get('status')}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts real ``doorstep serve`` processes (:class:`tests.service.serve.Server`); kills what is
    left of them, their whole process group, at the end."""
    from tests.service.serve import Server  # it imports this module's helpers

    started: list[Server] = []

    def start(log_name: str = "serve.log", **settings: str) -> Server:
        started.append(Server(tmp_path, log_name, **settings))
        return started[-1]

    yield start
    for server in started:
        server.close()
