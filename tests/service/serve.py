"""A real ``doorstep serve`` for the tests that need one (faults, waits): its own session (so its
process group is its own), a free port, its own SQLite database, two workers and the
``sleepy_solve`` stand-in, logging to a file the tests read the workers' pids from."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from service.store import PlanRow, Store
from tests.service.conftest import FAKES, small_request

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"worker [^ ]+:(\d+) ready")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie no one has reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_state(pid: int) -> str:
    """What a process is doing, for a failure message: its state, threads and kernel wait channel."""
    try:
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "gone"
    return f"{status.get('State', '?').strip()}, {status.get('Threads', '?').strip()} threads, waiting in {wchan}"


def until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


class Server:
    """``doorstep serve`` in its own session (so its process group is its own), logging to a file;
    ``settings`` override the ``DOORSTEP_*`` variables (``max_wait_s="2"``)."""

    def __init__(self, tmp: Path, log_name: str = "serve.log", **settings: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / log_name
        self.database_url = f"sqlite:///{tmp / 'doorstep.db'}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # the workers import the stand-in solve from tests/
            "DOORSTEP_DATA_DIR": str(tmp),
            "DOORSTEP_DATABASE_URL": self.database_url,
            "DOORSTEP_NETWORKS": "{}",
            "DOORSTEP_WORKERS": "2",
            "DOORSTEP_AUTH": "open",
            "DOORSTEP_POLL_S": "0.1",
            "DOORSTEP_HEARTBEAT_S": "0.3",
            "DOORSTEP_SOLVE_FUNCTION": f"{FAKES}:sleepy_solve",
            **{f"DOORSTEP_{name.upper()}": value for name, value in settings.items()},
        }
        doorstep = Path(sys.executable).with_name("doorstep")
        command = [str(doorstep)] if doorstep.exists() else [sys.executable, "-m", "service.cli"]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*command, "serve", "--port", str(self.port)], cwd=ROOT, env=env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready_workers(self) -> list[int]:
        """Pids of the workers that said they were ready, in order."""
        return [int(pid) for pid in READY.findall(self.log_path.read_text())]

    def wait_ready(self, workers: int = 2) -> list[int]:
        def up() -> bool:
            try:
                return self.http.get("/healthz").status_code == 200 and len(self.ready_workers()) >= workers
            except httpx.TransportError:
                return False

        # A start-up bound, not a speed test: a worker imports the engines and loads the compiled
        # matrix search, 50-60 s for two workers beside the API on 2 cores at load 15-22.
        until(up, 120, f"{workers} workers ready\n{self.log()}")
        return self.ready_workers()

    def submit(self, time_limit_s: float) -> str:
        response = self.http.post("/v1/plans", json=small_request(options={"time_limit_s": time_limit_s}))
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def plan(self, plan_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v1/plans/{plan_id}").json())

    def row(self, plan_id: str) -> PlanRow:
        """The plan as stored, with what the API does not show (the worker holding it)."""
        store = Store.from_url(self.database_url)
        try:
            row = store.get(plan_id)
        finally:
            store.close()
        assert row is not None
        return row

    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        self.http.close()
        # The whole group, even when the server is gone: a worker left behind (the failure these
        # tests look for) must not outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()
