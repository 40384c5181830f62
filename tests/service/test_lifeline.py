"""The worker's stop signal (issue 13): a SIGTERM that lands while another is being handled.

A Python signal handler can start again inside itself when a second signal lands while it runs;
a worker gets two or three SIGTERMs at once on every stop. The old handler, ``Event.set``, held
the event's lock when the second call came and waited for itself for ever (one stop in six).
The test puts a worker's handler in exactly that place, deterministically: the signal arrives
while the main thread holds the stop event's lock, as the first handler's ``Event.set`` does.
It runs in its own process, so a handler that hangs fails the test instead of hanging pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_WORKER = """
import os, signal, threading
from service.lifeline import stop_on_signal

stop = threading.Event()
stop_on_signal(signal.SIGTERM, stop)
with stop._cond:  # held, as a first SIGTERM's Event.set holds it when the second one lands
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs now, in this thread
    sum(range(10_000))  # and, at the latest, between these bytecodes
    print("handled", flush=True)
print("stopped" if stop.wait(5) else "not stopped", flush=True)
"""


def test_a_stop_signal_landing_while_the_stop_event_is_locked_still_stops_the_worker() -> None:
    try:
        done = subprocess.run([sys.executable, "-c", _WORKER], cwd=ROOT, capture_output=True, text=True,
                              timeout=15)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the signal handler waited for the stop event's lock for ever: {hung.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["handled", "stopped"]
