"""Completion callbacks, end to end: a real ``doorstep serve`` calls a real HTTP receiver on
loopback (allowed for the test by DOORSTEP_CALLBACK_ALLOW_PRIVATE), and the address check refuses
the command post's own network when it is not allowed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.callbacks import SIGNATURE_HEADER, verify
from service.config import Settings
from service.main import create_app
from tests.service.conftest import small_request, wait_for
from tests.service.serve import ROOT, _free_port, until

pytestmark = pytest.mark.slow


@dataclass
class Receiver:
    """An HTTP server on loopback that records every callback; ``answers`` are the statuses it gives
    in turn (then 200), ``hang_s`` how long it sits on a request before answering."""

    answers: list[int] = field(default_factory=list)
    hang_s: float = 0.0
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append((time.monotonic(), dict(self.headers.items()), body))
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/doorstep"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def started(server: Any) -> None:
    """The server and its worker up. Server.wait_ready gives them 60 s; a loaded machine (2 cores,
    other test runs) has taken longer to start a worker (its engines' imports and compilation)."""

    def up() -> bool:
        try:
            return bool(server.http.get("/healthz").status_code == 200 and server.ready_workers())
        except httpx.TransportError:
            return False

    until(up, 180, f"the worker ready\n{server.log()}")


# One worker: these tests solve one plan at a time, and a worker's start is most of their cost.
CALLBACK_SETTINGS = {"callback_allow_private": "true", "callback_backoff_s": "0.3", "callback_timeout_s": "1",
                     "callback_poll_s": "0.1", "workers": "1"}


def test_a_finished_solve_calls_back_once_signed_after_a_failed_first_delivery(
    servers: Callable[..., Any], receivers: Callable[..., Receiver]
) -> None:
    server = servers(**CALLBACK_SETTINGS)
    started(server)
    receiver = receivers(answers=[500])
    response = server.http.post("/v1/plans", json=small_request(options={"time_limit_s": 0.5},
                                                                callback_url=receiver.url))
    assert response.status_code == 202, response.text
    plan_id = response.json()["id"]
    until(lambda: len(receiver.received) >= 2, 30, "a second delivery after the receiver's 500")
    time.sleep(1.5)  # several sweeps and backoffs later: nothing more
    assert len(receiver.received) == 2
    secret = server.http.get("/v1/callbacks/secret").json()["secret"]
    for _, headers, body in receiver.received:
        assert verify(secret, body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["event"] == "plan.done" and payload["plan_id"] == plan_id
        assert payload["summary"]["visits_assigned"] == 2
        assert "notes" not in body.decode() and "138-0000-0000" not in body.decode()  # no personal data
    first, second = receiver.received
    assert first[1]["X-Doorstep-Delivery"] == second[1]["X-Doorstep-Delivery"]  # receivers de-duplicate by it
    assert [first[1]["X-Doorstep-Attempt"], second[1]["X-Doorstep-Attempt"]] == ["1", "2"]
    # A forged or altered callback is detectable.
    _, headers, body = second
    assert not verify("whsec_someone-else", body, headers[SIGNATURE_HEADER])
    assert not verify(secret, body.replace(b"done", b"fail"), headers[SIGNATURE_HEADER])
    assert not verify(secret, body, headers[SIGNATURE_HEADER], now=time.time() + 3600)  # a replay an hour later
    log = server.http.get(f"/v1/plans/{plan_id}/callbacks").json()
    [delivery] = log["data"]
    assert delivery["state"] == "delivered" and delivery["event"] == "done" and delivery["url"] == receiver.url
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert delivery["attempts"][0]["error"] == "the receiver answered 500"


def test_a_cancelled_solve_calls_back_with_its_event(
    servers: Callable[..., Any], receivers: Callable[..., Receiver]
) -> None:
    server = servers(**CALLBACK_SETTINGS)
    started(server)
    receiver = receivers()
    plan_id = server.http.post("/v1/plans", json=small_request(options={"time_limit_s": 30},
                                                               callback_url=receiver.url)).json()["id"]
    until(lambda: server.plan(plan_id)["status"] == "solving", 30, "the solve started")
    assert server.http.delete(f"/v1/plans/{plan_id}").status_code == 200
    until(lambda: receiver.received, 20, "the cancelled plan's callback")
    assert json.loads(receiver.received[0][2])["event"] == "plan.cancelled"


def test_a_receiver_that_never_answers_delays_neither_solves_nor_other_callbacks(
    servers: Callable[..., Any], receivers: Callable[..., Receiver]
) -> None:
    server = servers(**{**CALLBACK_SETTINGS, "callback_timeout_s": "30"})
    started(server)
    silent, prompt = receivers(hang_s=60), receivers()
    slow_id = server.http.post("/v1/plans", json=small_request(options={"time_limit_s": 0.3},
                                                               callback_url=silent.url)).json()["id"]
    until(lambda: silent.received, 20, "the silent receiver was called")
    submitted = time.monotonic()
    plan_id = server.http.post("/v1/plans", json=small_request(options={"time_limit_s": 0.3},
                                                               callback_url=prompt.url)).json()["id"]
    until(lambda: server.plan(plan_id)["status"] == "done", 20, "the second solve finished")
    until(lambda: prompt.received, 10, "the prompt receiver was called while the silent one still holds its call")
    # Long before the silent receiver's call can end (its 30 s timeout; it hangs for 60 s).
    assert prompt.received[0][0] - submitted < 25
    assert len(silent.received) == 1 and server.plan(slow_id)["status"] == "done"
    [delivery] = server.http.get(f"/v1/plans/{slow_id}/callbacks").json()["data"]
    assert delivery["state"] == "pending" and delivery["attempts"] == []  # still in flight


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/hook", "http://[::1]/hook", "http://10.1.2.3/hook", "http://192.168.1.10:8000/x",
    "http://169.254.169.254/latest/meta-data", "http://localhost/hook", "ftp://example.org/hook",
    "http://user:pw@example.org/hook",
])
def test_a_callback_into_the_local_network_is_refused_naming_the_field(
    make_settings: Callable[..., Settings], sqlite_url: str, url: str
) -> None:
    with TestClient(create_app(make_settings(sqlite_url))) as client:
        response = client.post("/v1/plans", json=small_request(callback_url=url))
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "callback_url"]
        assert client.get("/v1/plans").json()["count"] == 0  # refused before anything was queued


def test_the_integrators_example_submits_a_day_hears_the_callback_and_prints_the_routes(
    servers: Callable[..., Any], tmp_path: Path
) -> None:
    server = servers(**CALLBACK_SETTINGS)
    started(server)
    day = tmp_path / "day.json"
    day.write_text(json.dumps(small_request(options={"time_limit_s": 0.5})))
    script = ROOT / "data" / "integrator_example.py"
    done = subprocess.run(
        [sys.executable, str(script), str(day), "--server", server.url, "--listen", f"127.0.0.1:{_free_port()}",
         "--timeout", "60"],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "callback: plan.done" in done.stdout
    assert re.search(r"team-1: \d\d:\d\d a, \d\d:\d\d b|team-1: \d\d:\d\d b, \d\d:\d\d a", done.stdout), done.stdout


def test_a_replan_calls_back_for_its_new_version(
    make_settings: Callable[..., Settings], sqlite_url: str, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    settings = make_settings(sqlite_url, callback_allow_private=True, callback_poll_s=0.1)
    with TestClient(create_app(settings)) as client:
        plan_id = client.post("/v1/plans", json=small_request()).json()["id"]
        wait_for(client, plan_id, {"done"})
        replanned = client.post(f"/v1/plans/{plan_id}/replan", json={"now": "10:00", "callback_url": receiver.url})
        assert replanned.status_code == 202, replanned.text
        until(lambda: receiver.received, 30, "the new version's callback")
        payload = json.loads(receiver.received[0][2])
        assert payload["plan_id"] == replanned.json()["id"] != plan_id and payload["version"] == 2
        assert client.get(f"/v1/plans/{plan_id}/callbacks").json()["data"] == []  # the first version asked none
