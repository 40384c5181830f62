"""What ties a worker process to the API process that started it, without shared locks.

- **Wake-ups** go through a pipe per worker (:class:`WakePipe`): the API writes a byte,
  non-blocking, and never waits for the worker. A ``multiprocessing.Event`` did wait: its
  ``set()`` is a ``Condition.notify_all`` that blocks until every counted sleeper acknowledges,
  and a worker killed while sleeping (the kernel's OOM killer) never does, so ``doorstep serve``
  hung for ever in "Waiting for application shutdown". The pipe's end-of-file also tells a
  worker its API process has gone.
- **Parent death**: :func:`die_with_parent` asks Linux to send the worker SIGTERM when the API
  process dies (``PR_SET_PDEATHSIG``, as the engines do with theirs in ``routing.solver``), and
  :func:`watch_parent` checks the parent's pid as well (other systems; a death before the
  ``prctl``). A worker whose API was killed with SIGKILL used to run on under PID 1 and take
  jobs beside the restarted API's workers.
- **Stop signals** (:func:`stop_on_signal`) reach the worker's stop event through a pipe and a
  thread, never by a lock taken in the signal handler (see there).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class WakePipe:
    """The API's end of one worker's wake-up pipe: :meth:`wake` never blocks."""

    def __init__(self, context: Any) -> None:
        self.reader, self._writer = context.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)

    def wake(self) -> None:
        try:
            os.write(self._writer.fileno(), b"w")
        except BlockingIOError:  # the pipe is full: the worker has wake-ups enough waiting
            pass
        except OSError:  # the worker is gone (broken pipe) or the pipe was just closed
            pass

    def close(self) -> None:
        """Close the API's ends; the worker reads end-of-file (and takes it as a stop)."""
        for connection in (self._writer, self.reader):
            with contextlib.suppress(OSError):
                connection.close()


def wait_for_wake(reader: Connection, timeout_s: float) -> bool:
    """Sleep until a wake-up or ``timeout_s``; False when the API's end is closed (stop)."""
    if not reader.poll(timeout_s):
        return True
    try:
        data = os.read(reader.fileno(), 4096)  # readable: this does not block
    except OSError:
        return False
    return bool(data)


def stop_on_signal(signum: int, stop: threading.Event) -> None:
    """Set ``stop`` when ``signum`` arrives, from a thread rather than from the signal handler.

    A Python signal handler runs in the main thread between two bytecodes, and a second signal
    landing while it runs starts the handler again *inside* the first. A worker gets SIGTERM two
    or three times at once on a stop (the runner's, the parent-death signal as the runner's
    supervisor thread ends, and a signal to the whole group). ``Event.set`` holds a non-reentrant
    lock while it runs Python code, so the nested call waited for the outer one for ever: the
    worker kept its job and was killed at the runner's deadline (issue 13, about one stop in
    six). Here the handler only writes a byte to a pipe (no lock, safe to nest) and a daemon
    thread sets the event.
    """
    reader, writer = os.pipe()
    os.set_blocking(writer, False)

    def relay() -> None:
        os.read(reader, 1)
        stop.set()

    def on_signal(*_: Any) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe already holds the news
            os.write(writer, b"s")

    threading.Thread(target=relay, name=f"on-signal-{signum}", daemon=True).start()
    signal.signal(signum, on_signal)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when ``parent_pid`` (its parent) dies (Linux).

    The signal follows the parent *thread* that started the process, so the runner starts its
    workers from its long-lived supervisor thread, never from a pooled request thread.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(parent_pid: int, on_gone: Callable[[], None], *, interval_s: float = 0.5,
                 grace_s: float = 5.0) -> threading.Thread:
    """A daemon thread calling ``on_gone`` once the parent has gone, then ending the process if it
    has not ended itself within ``grace_s`` (a graceful stop that hangs must not outlive the API)."""

    def run() -> None:
        stop = threading.Event()
        while os.getppid() == parent_pid:
            stop.wait(interval_s)
        on_gone()
        stop.wait(grace_s)
        os._exit(1)

    thread = threading.Thread(target=run, name="parent-watch", daemon=True)
    thread.start()
    return thread
