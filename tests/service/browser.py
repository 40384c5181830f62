"""What the browser tests of the pages share: Debian's Chromium and a real `doorstep serve` on a
free port with its own data directory (its output, with uvicorn's access log, in ``serve.log``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections (updates, sync) are refused
# by a closed network and it stalls; QUIC likewise.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (its own browser download cannot work here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def require_chromium(page: str) -> None:
    """Skip the calling test module without Chromium, except in CI (``CI=true``), where it fails."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing in CI: .ci/run installs it (apt-get install chromium)")
    pytest.skip(f"no {CHROMIUM} (apt-get install chromium): the {page}'s browser tests are skipped",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`doorstep serve` on a free port with its own data directory; its output (with uvicorn's
    access log) goes to ``log``."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
        self.env.update(DOORSTEP_DATA_DIR=str(data_dir), DOORSTEP_NETWORKS="{}", DOORSTEP_WORKERS="1",
                        DOORSTEP_AUTH="required", DOORSTEP_DEFAULT_TIME_LIMIT_S="1", DOORSTEP_POLL_S="0.1",
                        DOORSTEP_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        self.env.update(env)
        doorstep = shutil.which("doorstep", path=str(Path(sys.executable).parent)) or "doorstep"
        self.doorstep = doorstep
        self.dispatcher = self.cli("keys", "create", "--role", "dispatcher", "--org", "kallio").strip().splitlines()[-1]
        self._out = self.log.open("wb")
        self.process = subprocess.Popen([doorstep, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, stdout=self._out, stderr=subprocess.STDOUT, cwd=ROOT,
                                        start_new_session=True)
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.dispatcher}"},
                                 timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"doorstep serve did not start:\n{self.log.read_text()}")

    def warm_up(self) -> None:
        """Solve a small day once, in an organisation of its own (the tests' plan lists stay empty):
        the worker's engine server is then up, and the tests' first solves get their whole budget.
        On a machine loaded far past its cores, its start took longer than a few seconds' limit."""
        key = self.cli("keys", "create", "--role", "dispatcher", "--org", "warm-up").strip().splitlines()[-1]
        request = json.loads((ROOT / "data" / "small-with-matrices.json").read_text())
        request["options"] = {"time_limit_s": 1}
        response = httpx.post(f"{self.url}/v1/plans?wait=true", json=request, timeout=120,
                              headers={"Authorization": f"Bearer {key}"})
        assert response.status_code in (200, 202), response.text

    def cli(self, *args: str) -> str:
        done = subprocess.run([self.doorstep, *args], env=self.env, capture_output=True, text=True, check=False,
                              cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._out.close()

    def solved(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/v1/plans?wait=true", json=request)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == "done", body
        return body

    def wait_done(self, plan_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body: dict[str, Any] = self.http.get(f"/v1/plans/{plan_id}").json()
            if body["status"] in ("done", "failed", "cancelled"):
                assert body["status"] == "done", body
                return body
            time.sleep(0.2)
        raise AssertionError(f"plan {plan_id} was not solved in {timeout_s} s")

    def events(self, plan_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.http.get(f"/v1/plans/{plan_id}/events").json()["data"]
        return events
