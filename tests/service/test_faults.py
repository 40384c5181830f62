"""Faults an operator meets, on real ``doorstep serve`` processes (issue 13): stop signals to
the server and to its process group, a worker killed as the OOM killer would, the API process
killed outright, and a restart after it.

Each test starts the real command on a free port with its own SQLite database, two worker
processes and the ``sleepy_solve`` stand-in (a solve that runs its whole time limit unless
stopped), and reads the server's log for the workers' pids. The 15 s bound is the issue's
shutdown target: a correctness bound (the server used to hang for ever), not a speed test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from service.schemas import Status
from tests.service.serve import Server, process_state, running, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; parent-death signals are Linux"),
]

SHUTDOWN_BOUND_S = 15.0


def _solving(server: Server, plan_id: str) -> None:
    until(lambda: server.plan(plan_id)["status"] == "solving", 30, f"plan {plan_id} solving\n{server.log()}")


@pytest.mark.parametrize("target", ["process", "group"])
@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_stop_signal_ends_serve_within_the_bound_after_a_worker_died(
    servers: Callable[[str], Server], signum: signal.Signals, target: str
) -> None:
    server = servers("serve.log")
    workers = server.wait_ready()
    plan_id = server.submit(time_limit_s=60)
    _solving(server, plan_id)
    # A worker killed while it waits for work (as the OOM killer would) used to make every later
    # stop hang in "Waiting for application shutdown".
    solving = int(str(server.row(plan_id).worker_id).rsplit(":", 1)[1])
    os.kill(next(pid for pid in workers if pid != solving), signal.SIGKILL)
    # A start-up bound (as in Server.wait_ready): a replacement took 31 s at load 16-19.
    every = until(lambda: len(server.ready_workers()) >= 3 and server.ready_workers(), 120,
                  f"a replacement worker\n{server.log()}")
    alive = [pid for pid in every if running(pid)]
    assert len(alive) == 2, (every, alive)

    sent = time.monotonic()
    if target == "group":
        os.killpg(server.pid, signum)
    else:
        os.kill(server.pid, signum)
    try:
        server.process.wait(SHUTDOWN_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"doorstep serve still running {SHUTDOWN_BOUND_S:.0f} s after {signum.name}\n{server.log()}")
    took = time.monotonic() - sent
    print(f"doorstep serve ended {took:.2f} s after {signum.name} to its {target}")  # shown with -s
    until(lambda: not any(running(pid) for pid in alive), 5, f"workers {alive} gone")
    assert took < SHUTDOWN_BOUND_S
    # The interrupted solve went back to the queue for the next start, not counted as an attempt.
    # The solving worker gets two or three SIGTERMs at once; about one stop in six, its handler
    # hung on the second until the runner killed it (service.lifeline.stop_on_signal).
    row = server.row(plan_id)
    assert row.status is Status.QUEUED and row.attempts == 0, row


def test_a_killed_api_leaves_no_worker_behind_and_a_restart_finishes_its_work(
    servers: Callable[[str], Server],
) -> None:
    server = servers("serve.log")
    workers = server.wait_ready()
    plan_id = server.submit(time_limit_s=3)
    _solving(server, plan_id)
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(5)
    # Before: the workers ran on under PID 1 and took jobs beside a restarted API's own workers.
    # A bound for a loaded machine: they stop at once (0.6-2 s measured), at most 5 s after
    # noticing the new parent pid (service.lifeline.watch_parent).
    try:
        until(lambda: not any(running(pid) for pid in workers), 30, f"workers {workers} gone after the API")
    except AssertionError:
        states = {pid: process_state(pid) for pid in workers}
        raise AssertionError(f"workers left behind by the killed API: {states}\n{server.log()}") from None

    restarted = servers("restart.log")
    restarted.wait_ready()
    body = until(lambda: (b := restarted.plan(plan_id))["status"] in ("done", "failed") and b, 30,
                 f"the interrupted plan finished\n{restarted.log()}")
    assert body["status"] == "done", body
    assert body["plan"]["summary"]["visits_assigned"] == 2
    assert body["attempts"] <= 2
