"""Real ``doorstep worker`` processes on the Redis of loopback, for the Celery runner's tests.

Each test gets its own Celery queue (so concurrent test runs on one Redis never take each
other's plans) and its own SQLite database shared by the API and the workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.service.serve import ROOT, until

REDIS_URL = os.environ.get("DOORSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
READY = re.compile(r"worker [^ ]+:(\d+) ready")


def require_redis() -> None:
    """Skip without a Redis on loopback, except in CI, where `.ci/run` starts one: there it fails."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            raise AssertionError(f"Redis at {REDIS_URL} is unreachable in CI: {error}") from None
        pytest.skip(f"no Redis at {REDIS_URL} ({error}): start redis-server")


def celery_env(tmp: Path, **settings: Any) -> dict[str, str]:
    """The ``DOORSTEP_*`` settings of an API and its workers: one queue, one database."""
    values: dict[str, Any] = {
        "runner": "celery",
        "broker_url": REDIS_URL,
        "celery_queue": f"doorstep-test-{uuid.uuid4().hex[:8]}",
        "data_dir": str(tmp),
        "database_url": f"sqlite:///{tmp / 'doorstep.db'}",
        "networks": "{}",
        "workers": "0",
        "auth": "open",
        "heartbeat_s": "0.3",
        # Above the seconds a heartbeat can wait on SQLite's lock on a loaded machine; a pool
        # child killed on this host is taken over at once anyway (its pid is gone).
        "stale_after_s": "15",
        "solve_cores": "1",
        "cancel_kill_s": "8",
        "max_time_limit_s": "60",
        "hard_limit_grace_s": "30",
        "visibility_timeout_s": "120",
    }
    values.update(settings)
    return {f"DOORSTEP_{name.upper()}": str(value) for name, value in values.items()}


class Workers:
    """``doorstep worker --concurrency 1`` processes, each in its own session (so its whole process
    group, pool child and engines included, is killed at the end)."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, count: int = 1) -> None:
        doorstep = Path(sys.executable).with_name("doorstep")
        command = [str(doorstep)] if doorstep.exists() else [sys.executable, "-m", "service.cli"]
        for _ in range(count):
            log = self.tmp / f"worker-{len(self.processes)}.log"
            with log.open("w") as out:
                self.processes.append(subprocess.Popen(
                    [*command, "worker", "--concurrency", "1", "--name", f"w{uuid.uuid4().hex[:8]}@%h"],
                    cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                ))
            self.logs.append(log)

    def ready_children(self) -> list[int]:
        """Pids of the pool children that said they were ready (a replaced child adds its own)."""
        return [int(pid) for log in self.logs for pid in READY.findall(log.read_text())]

    def wait_ready(self, children: int) -> list[int]:
        until(lambda: len(self.ready_children()) >= children, 90, f"{children} pool children ready\n{self.log()}")
        return self.ready_children()

    def log(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes:
            process.wait(10)
