"""The parts of a split day as Celery tasks: one large day's search spread over several machines.

:mod:`routing.solver.split` cuts a large day into parts and searches them in batches, through a
:class:`~routing.solver.split.PartRunner`. :class:`CeleryParts` is the Celery runner's: of each
batch, the solve's own cores take the first parts (engine processes on its machine, as on one
machine) and every other part goes to the parts queue (``<celery_queue>-parts``) as a task, which
any worker's pool child takes (:func:`solve_part`). Batches hold the solve's cores plus
``part_slots`` parts. An answer comes back through Celery's result backend (the broker's Redis).
A part not back by the batch's end plus a grace keeps its routes (the split takes only answers
that rank better on the part): a busy or lost worker costs improvement, never a household.

A part is its sub-problem, matrices included (about 2 MB for 200 tasks), pickled. Loading a
pickle can run code, so a part is signed with HMAC-SHA256 under ``part_key`` and a worker refuses
one whose signature does not check: whoever can write to the broker still cannot make a worker
run code. A part expires at its batch's end: delivered later, Celery drops it unsearched (the
machines' clocks must agree, as for any Celery ``expires``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import pickle
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from routing.solver.engine import Routes
from routing.solver.portfolio import GRACE_S, Job, RunResult, run_portfolio
from service.config import Settings

log = logging.getLogger(__name__)

PART_TASK = "doorstep.solve_part"
TRANSIT_S = 3.0
"""How long past a part's grace the solve waits, at most, for its answer to come back through the
broker (the split stops waiting at its own grace: answers came back within 0.5 s of the batch's end)."""
POLL_S = 0.1
_MAC = hashlib.sha256().digest_size


class PartRefused(Exception):
    """A part that is not one this deployment signed."""


def parts_queue(settings: Settings) -> str:
    return f"{settings.celery_queue}-parts"


def seal(value: object, key: str) -> str:
    """``value`` pickled, compressed and signed under ``key``, as text for a task's JSON argument."""
    data = zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)
    mac = hmac.new(key.encode(), data, hashlib.sha256).digest()
    return base64.b64encode(mac + data).decode("ascii")


def unseal(text: str, key: str) -> Any:
    """What :func:`seal` sealed under the same ``key``; :class:`PartRefused` for anything else,
    before anything is unpickled."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise PartRefused("not a sealed part") from None
    mac, data = raw[:_MAC], raw[_MAC:]
    if not key or not hmac.compare_digest(mac, hmac.new(key.encode(), data, hashlib.sha256).digest()):
        raise PartRefused("its signature does not check: is part_key the same on every machine?")
    return pickle.loads(zlib.decompress(data))


class CeleryParts:
    """A :class:`~routing.solver.split.PartRunner` that sends parts to other workers."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.queue = parts_queue(settings)
        self.sent = 0
        """Parts sent to other workers so far..."""
        self.returned = 0
        """...and answers they sent back in time."""

    def width(self, cores: int) -> int:
        return cores + self.settings.part_slots

    def __call__(
        self,
        jobs: Sequence[Job],
        *,
        cores: int,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: Callable[[str, int | None, Routes], object] | None,
        should_stop: Callable[[], bool] | None,
    ) -> list[RunResult]:
        here = [job for job in jobs if (job.run.part or 0) < cores]
        away = [job for job in jobs if (job.run.part or 0) >= cores]
        sent = [(job, self._send(job, deadline, initial)) for job in away]
        results = run_portfolio(
            here, deadline=deadline, initial=initial, on_incumbent=on_incumbent, should_stop=should_stop
        ) if here else []
        return results + self._collect(sent, deadline, should_stop)

    def _send(self, job: Job, deadline: float, initial: Mapping[str, Sequence[str]] | None) -> AsyncResult | None:
        own = {v.id: list(initial[v.id]) for v in job.problem.vehicles if initial and v.id in initial}
        left_s = max(1.0, deadline - time.time())
        try:
            result = self.app.send_task(
                PART_TASK,
                args=[seal((job, own, deadline), self.settings.part_key or "")],
                queue=self.queue,
                expires=left_s,
                retry=False,  # a part is worth nothing late: the solve goes on without it
                time_limit=left_s + GRACE_S + TRANSIT_S + 30,
            )
        except Exception:  # the broker is away: this part keeps its routes
            log.warning("part %s could not be sent to the broker", job.run.label, exc_info=True)
            return None
        self.sent += 1
        return result

    def _collect(
        self, sent: Sequence[tuple[Job, AsyncResult | None]], deadline: float, should_stop: Callable[[], bool] | None
    ) -> list[RunResult]:
        """The answers back by the batch's end plus grace and transit (or a stop)."""
        results = {job.run.label: RunResult(job.run, None) for job, _ in sent}
        pending = {job.run.label: answer for job, answer in sent if answer is not None}
        end = deadline + GRACE_S + TRANSIT_S
        while pending and time.time() < end and not (should_stop is not None and should_stop()):
            for label, answer in list(pending.items()):
                try:
                    if not answer.ready():
                        continue
                    value = answer.result if answer.successful() else None
                    answer.forget()
                except Exception:  # Redis away for a moment: ask again, until the end
                    log.warning("part %s: its answer could not be read", label, exc_info=True)
                    continue
                del pending[label]
                result = results[label]
                result.finished = True
                if isinstance(value, dict):
                    result.routes, result.error = value.get("routes"), value.get("error")
                    self.returned += result.routes is not None
                else:
                    result.error = "the part's task failed on its worker"
            if pending:
                time.sleep(POLL_S)
        for job, answer in sent:
            result = results[job.run.label]
            if not result.finished:
                result.error = "not sent: the broker was away" if answer is None else "did not come back in time"
        for answer in pending.values():
            with contextlib.suppress(Exception):
                answer.forget()  # expired unsearched, or ends at its deadline: its answer is not wanted
        return list(results.values())


def solve_part(payload: str, key: str | None, shutdown: threading.Event) -> dict[str, Any]:
    """A worker's side: search one part until its deadline; its final routes (or why none)."""
    try:
        job, initial, deadline = unseal(payload, key or "")
    except PartRefused as refused:
        log.error("a part was refused: %s", refused)
        return {"routes": None, "error": f"refused: {refused}"}
    if time.time() >= deadline:
        return {"routes": None, "error": "too late"}
    started = time.time()
    [result] = run_portfolio(
        [job],
        deadline=deadline,
        initial=initial,
        should_stop=lambda: shutdown.is_set() or time.time() > deadline + GRACE_S,
    )
    log.info("part %s (%d tasks): %s in %.1f s", job.run.label, len(job.task_ids),
             "answered" if result.routes is not None else result.error, time.time() - started)
    return {"routes": result.routes, "error": result.error}
