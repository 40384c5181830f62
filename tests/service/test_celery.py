"""The Celery runner on a real Redis with real ``doorstep worker`` processes and the real solver."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.store import Store
from tests.service.celery_pool import Workers, celery_env, require_redis
from tests.service.conftest import wait_for
from tests.service.serve import running, until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SMALL = json.loads((ROOT / "data" / "small-with-matrices.json").read_text())


def settings_of(env: dict[str, str]) -> Settings:
    """The settings the workers read from ``env``, for the API in this process."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings()


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[dict[str, str], Workers]]:
    """The settings of a Celery deployment and its (not yet started) workers."""
    require_redis()
    env = celery_env(tmp_path)
    workers = Workers(tmp_path, env)
    yield env, workers
    workers.close()


def request(time_limit_s: float, **options: Any) -> dict[str, Any]:
    return {**SMALL, "options": {**SMALL["options"], "time_limit_s": time_limit_s, **options}}


def test_a_plan_solved_through_celery_is_as_valid_and_serves_as_many_as_the_embedded_runners(
    pool: tuple[dict[str, str], Workers], make_settings: Any, tmp_path: Path
) -> None:
    env, workers = pool
    workers.start(1)
    embedded = make_settings(f"sqlite:///{tmp_path / 'embedded.db'}", solve_function="routing.solver:solve",
                             solve_cores=1)
    with TestClient(create_app(embedded)) as client:
        # 5 s, not the sample's 2: on a loaded machine starting the engines can take 2 s (the
        # search stops as soon as it has converged anyway).
        local = client.post("/v1/plans?wait=true", json=request(5)).json()
        local = wait_for(client, local["id"], {"done"}, timeout_s=60)
    workers.wait_ready(1)
    with TestClient(create_app(settings_of(env))) as client:
        queued = client.post("/v1/plans", json=request(5))
        assert queued.status_code == 202, queued.text
        remote = wait_for(client, queued.json()["id"], {"done", "failed"}, timeout_s=60)
    assert remote["status"] == "done", remote
    for key in ("feasible", "visits_assigned", "visits_unassigned"):
        assert remote["plan"]["summary"][key] == local["plan"]["summary"][key], key
    assert remote["plan"]["summary"]["feasible"] is True


def test_a_worker_killed_mid_solve_has_its_plan_finished_by_another_and_stored_once(
    pool: tuple[dict[str, str], Workers],
) -> None:
    env, workers = pool
    workers.start(2)
    workers.wait_ready(2)
    store = Store.from_url(env["DOORSTEP_DATABASE_URL"])
    with TestClient(create_app(settings_of(env))) as client:
        first = client.post("/v1/plans", json=request(10, full_budget=True)).json()["id"]
        second = client.post("/v1/plans", json=request(3, full_budget=True)).json()["id"]

        def solving() -> Any:
            row = store.get(first)
            return row if row and row.status.value == "solving" else None

        until(solving, 30, f"plan solving\n{workers.log()}")
        time.sleep(1.5)  # into the search
        held = solving()
        assert held is not None
        victim = int(held.worker_id.rsplit(":", 1)[1])
        os.kill(victim, signal.SIGKILL)
        finished = wait_for(client, first, {"done", "failed", "cancelled"}, timeout_s=60)
        other = wait_for(client, second, {"done", "failed", "cancelled"}, timeout_s=60)
    row = store.get(first, document=True)
    store.close()
    assert not running(victim)
    assert finished["status"] == "done", (finished, workers.log())
    assert row is not None and row.attempts == 2, "delivered again and solved once more, not more"
    assert row.worker_id != held.worker_id and row.document is not None, "finished by another pool child"
    assert finished["plan"]["summary"]["visits_assigned"] == len(SMALL["visits"])
    assert other["status"] == "done", "the plan queued behind it is not lost"


def test_cancelling_a_solve_on_a_worker_stops_it_within_seconds_and_keeps_the_best_plan(
    pool: tuple[dict[str, str], Workers],
) -> None:
    env, workers = pool
    workers.start(1)
    workers.wait_ready(1)
    store = Store.from_url(env["DOORSTEP_DATABASE_URL"])
    with TestClient(create_app(settings_of(env))) as client:
        plan_id = client.post("/v1/plans", json=request(40, full_budget=True)).json()["id"]
        until(lambda: (row := store.get(plan_id)) is not None and row.progress, 30, f"progress\n{workers.log()}")
        asked = time.monotonic()
        assert client.delete(f"/v1/plans/{plan_id}").status_code in (200, 202)
        cancelled = wait_for(client, plan_id, {"cancelled", "done", "failed"}, timeout_s=20)
        took = time.monotonic() - asked
    store.close()
    assert cancelled["status"] == "cancelled"
    assert took < 5, f"stopped {took:.1f} s after the cancel"
    assert cancelled["plan"]["summary"]["visits_assigned"] == len(SMALL["visits"]), "the best plan is kept"
