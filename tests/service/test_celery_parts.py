"""The parts of a split day as Celery tasks: signed parts, and a day searched on two workers.

A real Redis, real ``doorstep worker`` processes, the real solver. The street office's 80 home
visits stand in for a large day: the deployment's split threshold and part size are lowered by
setting, so the day splits into parts of about 25 visits; each solve has one core and one part
slot on another worker, so every batch sends a part to the other worker.
"""

from __future__ import annotations

import json
import pickle
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.celery_parts import PartRefused, seal, solve_part, unseal
from service.config import Settings
from service.main import create_app
from tests.service.celery_pool import Workers, celery_env, require_redis
from tests.service.conftest import wait_for
from tests.service.test_celery import settings_of

ROOT = Path(__file__).resolve().parents[2]
KEY = "a-shared-secret-of-this-deployment"


class Planted:
    """Unpickling this would run code: what a forged part would carry."""

    ran = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Planted._run, ())

    @staticmethod
    def _run() -> None:
        Planted.ran = True


def test_a_sealed_part_opens_with_the_same_key_only() -> None:
    value = {"routes": {"team-1": ["v-1", "v-2"]}, "deadline": 12.5}
    assert unseal(seal(value, KEY), KEY) == value
    with pytest.raises(PartRefused, match="part_key the same on every machine"):
        unseal(seal(value, KEY), "another-deployment's-secret")


@pytest.mark.parametrize(
    "payload",
    [
        # A part signed under another key carrying code: refused before it is unpickled.
        pytest.param(lambda: seal(Planted(), "another-deployment's-secret"), id="forged"),
        # A real part with one byte of its pickle changed on the way.
        pytest.param(lambda: (raw := seal(Planted(), KEY))[:-8] + ("A" if raw[-8] != "A" else "B") + raw[-7:],
                     id="tampered"),
        # Not base64 at all.
        pytest.param(lambda: "not a part!", id="garbage"),
    ],
)
def test_a_worker_refuses_a_part_it_cannot_trust_without_loading_it(payload: Any) -> None:
    Planted.ran = False
    answer = solve_part(payload(), KEY, threading.Event())
    assert answer["routes"] is None and answer["error"].startswith("refused: ")
    assert Planted.ran is False


def test_a_worker_without_the_key_refuses_every_part() -> None:
    answer = solve_part(seal(("a", {}, 0.0), KEY), None, threading.Event())
    assert answer == {"routes": None, "error": "refused: its signature does not check: is part_key the same on every "
                                               "machine?"}


@pytest.mark.parametrize("key", [None, "short"])
def test_part_slots_without_a_long_enough_key_are_refused_at_start(key: str | None) -> None:
    with pytest.raises(ValidationError, match="part_slots needs part_key, a secret of at least 16 characters"):
        Settings(runner="celery", part_slots=2, part_key=key)
    assert pickle.loads(pickle.dumps(Settings(runner="local", part_slots=2))).part_slots == 2  # local: unused


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[dict[str, str], Workers]]:
    require_redis()
    env = celery_env(
        tmp_path,
        solve_function="routing.solver:solve",
        networks=json.dumps({"helsinki": "default"}),
        split_above_tasks="30",
        part_tasks="25",
        part_slots="1",
        part_key=KEY,
    )
    workers = Workers(tmp_path, env)
    yield env, workers
    workers.close()


@pytest.mark.slow
def test_a_split_day_sends_parts_to_another_worker_and_joins_a_feasible_plan_that_explains_everyone(
    pool: tuple[dict[str, str], Workers],
) -> None:
    env, workers = pool
    workers.start(2)
    workers.wait_ready(2)
    request = json.loads((ROOT / "data" / "helsinki-home-visits.json").read_text())
    request["options"] = {"time_limit_s": 25, "full_budget": True}
    with TestClient(create_app(settings_of(env))) as client:
        queued = client.post("/v1/plans", json=request)
        assert queued.status_code == 202, queued.text
        done = wait_for(client, queued.json()["id"], {"done", "failed"}, timeout_s=120)
    assert done["status"] == "done", (done, workers.log())
    plan = done["plan"]
    assert plan["summary"]["feasible"] is True
    served = {s["id"] for r in plan["routes"] for s in r["steps"] if s["kind"] == "visit"}
    explained = {u["visit_id"]: u for u in plan["unassigned"]}
    assert served | set(explained) == {v["id"] for v in request["visits"]} and not served & set(explained)
    assert all(u["reason"] and u["detail"] for u in explained.values())
    logs = workers.log()
    sent = re.search(r"(\d+) parts sent to other workers, (\d+) answered in time", logs)
    assert sent is not None, logs
    assert int(sent[1]) >= 2 and int(sent[2]) >= 1, sent[0]
    assert re.search(r"part \S+ \(\d+ tasks\): answered", logs), "the other worker searched a part"


def test_parts_the_broker_cannot_take_keep_their_routes_and_the_rest_is_searched_here(tmp_path: Path) -> None:
    from dataclasses import replace

    from routing.solver import plan_runs
    from routing.solver.portfolio import Job
    from service.celery_parts import CeleryParts
    from service.celery_runner import make_celery
    from service.networks import NetworkRegistry
    from service.pipeline import prepare
    from service.schemas import PlanRequest

    # Nothing listens on the discard port: the broker is away.
    settings = Settings(runner="celery", broker_url="redis://127.0.0.1:9/0", part_slots=1, part_key=KEY,
                        networks={}, data_dir=tmp_path)
    request = json.loads((ROOT / "data" / "small-with-matrices.json").read_text())
    problem = prepare(PlanRequest.model_validate(request), NetworkRegistry(settings)).problem
    ids = [v.id for v in problem.visits]
    half = len(ids) // 2
    halves = [([problem.vehicles[0].id], ids[:half]), ([v.id for v in problem.vehicles[1:]], ids[half:])]
    jobs = []
    for k, (vehicle_ids, part_ids) in enumerate(halves):
        part = problem.subproblem(vehicle_ids, part_ids)
        jobs += [Job(replace(run, part=k), part, part_ids) for run in plan_runs(part, part_ids, "auto", 1, 1)]
    runner = CeleryParts(make_celery(settings), settings)
    started = time.monotonic()
    results = runner(jobs, cores=1, deadline=time.time() + 3, initial=None, on_incumbent=None, should_stop=None)
    assert time.monotonic() - started < 3 + 5, "the broker being away does not hold the batch up"
    here = [r for r in results if r.run.part == 0]
    away = [r for r in results if r.run.part == 1]
    assert any(r.routes for r in here), here  # the solve's own share is searched
    assert away and all(r.routes is None and r.error == "not sent: the broker was away" for r in away)
    assert runner.sent == 0 and runner.returned == 0
