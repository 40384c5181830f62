"""Completion callbacks: when a solve ends (done, failed, cancelled), Doorstep POSTs a small signed
JSON body to the URL the integrator gave with the plan.

The database is the outbox. Submitting a plan with ``callback_url`` stores a ``waiting`` callback
beside it; nothing on the solving side knows about callbacks. A :class:`CallbackSender` thread in
the API process looks for waiting callbacks whose plan has reached a final status, marks them
``pending`` and delivers them from a small thread pool, with retries and exponential backoff, so
a slow or silent receiver holds only its own delivery (bounded by a timeout) and never a solve.
Each attempt is logged (``callback_attempts``), readable through ``GET /v1/plans/{id}/callbacks``.
Several API processes may run senders on one database: a delivery is claimed with a lease
(``locked_until``), so each attempt is made once.

The body is signed with HMAC-SHA256 over the organisation's secret (:func:`organisation_secret`),
as ``X-Doorstep-Signature: t=<unix seconds>,v1=<hex>`` over ``"<t>.<body>"``: the timestamp
lets receivers refuse replays of old deliveries (:func:`verify`).

Integrators' receivers are on the internet; the command post's LAN must not be reachable through
a callback, so loopback, private, link-local and reserved addresses are refused, when the plan is
submitted and again before each delivery (a name may resolve elsewhere later), unless
``DOORSTEP_CALLBACK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from routing.errors import ProblemError
from service.config import Settings
from service.store import Base, PlanRecord, Store, UTCDateTime, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Doorstep-Signature"
FINAL = ("done", "failed", "cancelled")


class CallbackRecord(Base):
    __tablename__ = "callbacks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32), index=True)
    organisation: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16))
    """waiting (the solve runs), pending (to deliver), delivered, failed (gave up)."""
    event: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CallbackAttemptRecord(Base):
    __tablename__ = "callback_attempts"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    callback_id: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)


class OrganisationSecretRecord(Base):
    __tablename__ = "organisation_secrets"

    organisation: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- addresses -----------------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def refused_address(url: str, settings: Settings) -> str | None:
    """Why ``url`` may not receive callbacks (a sentence), or None when it may."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"callback_url must be an http(s) URL with a host, got {url!r}"
    if parsed.username or parsed.password:
        return "callback_url must not carry credentials (the signature authenticates Doorstep)"
    if settings.callback_allow_private:
        return None
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        return f"callback_url host {parsed.hostname!r} does not resolve ({error})"
    private = sorted({str(info[4][0]) for info in infos if not _public(str(info[4][0]))})
    if private:
        return (f"callback_url host {parsed.hostname!r} is a loopback, private or reserved address "
                f"({', '.join(private)}); callbacks go to receivers on the internet "
                "(operators may allow others with DOORSTEP_CALLBACK_ALLOW_PRIVATE)")
    return None


def check_callback_url(url: str | None, settings: Settings, path: tuple[str | int, ...] = ("callback_url",)) -> None:
    """:class:`ProblemError` (a 422 naming the field) for a URL callbacks may not go to."""
    if url is None:
        return
    reason = refused_address(url, settings)
    if reason is not None:
        raise ProblemError(reason, path=path)


# -- the outbox ------------------------------------------------------------------------------------


def subscribe(store: Store, plan_id: str, organisation: str, url: str | None) -> None:
    """Call ``url`` back when plan ``plan_id`` ends (checked with :func:`check_callback_url` first)."""
    if url is None:
        return
    with store.transaction() as session:
        session.add(CallbackRecord(id=uuid.uuid4().hex, plan_id=plan_id, organisation=organisation, url=url,
                                   state="waiting", attempts=0, created_at=utcnow()))


def organisation_secret(store: Store, organisation: str) -> str:
    """The organisation's signing secret, made on first use."""
    with store.transaction() as session:
        found = session.get(OrganisationSecretRecord, organisation)
        if found is not None:
            return found.secret
    try:
        with store.transaction() as session:
            session.add(OrganisationSecretRecord(organisation=organisation, secret=f"whsec_{secrets.token_urlsafe(32)}",
                                                 created_at=utcnow()))
    except IntegrityError:  # another process made it first: theirs counts
        pass
    with store.transaction() as session:
        record = session.get(OrganisationSecretRecord, organisation)
        assert record is not None
        return record.secret


def rotate_secret(store: Store, organisation: str) -> str:
    """A new signing secret for the organisation (deliveries after this are signed with it)."""
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    with store.transaction() as session:
        record = session.get(OrganisationSecretRecord, organisation)
        if record is None:
            session.add(OrganisationSecretRecord(organisation=organisation, secret=secret, created_at=utcnow()))
        else:
            record.secret, record.created_at = secret, utcnow()
    return secret


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300, now: float | None = None) -> bool:
    """Whether ``header`` is Doorstep's signature of ``body`` under ``secret``, made within
    ``tolerance_s`` of ``now``: what a receiver checks (constant-time)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), f"t={timestamp},v1={fields.get('v1', '')}")


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A callback and its attempts, as the delivery log shows it."""

    id: str
    plan_id: str
    url: str
    state: str
    event: str | None
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


def deliveries(store: Store, plan_id: str) -> list[Delivery]:
    """The plan's callbacks and every attempt at each, oldest first."""
    with store.transaction() as session:
        records = session.execute(
            select(CallbackRecord).where(CallbackRecord.plan_id == plan_id).order_by(CallbackRecord.created_at)
        ).scalars().all()
        attempts = session.execute(
            select(CallbackAttemptRecord)
            .where(CallbackAttemptRecord.callback_id.in_([r.id for r in records]))
            .order_by(CallbackAttemptRecord.seq)
        ).scalars().all()
        by_callback: dict[str, list[Attempt]] = {}
        for a in attempts:
            by_callback.setdefault(a.callback_id, []).append(
                Attempt(a.attempt, a.at, a.status_code, a.error, a.duration_ms))
        return [Delivery(r.id, r.plan_id, r.url, r.state, r.event, by_callback.get(r.id, []), r.next_attempt_at,
                         r.created_at, r.finished_at) for r in records]


def payload(plan: PlanRecord, callback: CallbackRecord) -> dict[str, Any]:
    """What the receiver gets: enough to decide whether to fetch the plan, no personal data."""
    return {
        "event": f"plan.{plan.status}",
        "delivery_id": callback.id,
        "plan_id": plan.id,
        "status": plan.status,
        "url": f"/v1/plans/{plan.id}",
        "name": plan.name,
        "version": plan.version,
        "finished_at": plan.finished_at.isoformat() if plan.finished_at else None,
        "summary": {k: (plan.summary or {}).get(k) for k in
                    ("vehicles_used", "visits_assigned", "visits_unassigned", "feasible", "cost")}
        if plan.summary else None,
        "error": {"type": plan.error.get("type"), "msg": plan.error.get("msg")} if plan.error else None,
    }


class CallbackSender:
    """The thread that delivers due callbacks (one per API process; see the module's notes)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=settings.callback_concurrency, thread_name_prefix="callback")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=settings.callback_timeout_s, follow_redirects=False,
                                    headers={"User-Agent": "Doorstep-Callbacks/1"})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="callback-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        # Deliveries in flight end by their timeout; the process does not wait for them.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        from service.idempotency import Keys

        purged = 0.0
        while not self._stop.wait(self.settings.callback_poll_s):
            try:
                if time.monotonic() - purged > 60:  # expired idempotency keys: this thread's chore too
                    purged = time.monotonic()
                    Keys(self.store, self.settings.idempotency_ttl_s).purge_expired()
                self.arm()
                for callback_id in self.claim_due():
                    self._pool.submit(self._deliver_logged, callback_id)
            except Exception:  # a database hiccup: try again at the next tick
                log.warning("callback sweep failed", exc_info=True)

    def arm(self) -> None:
        """Waiting callbacks whose plan has ended become due now."""
        now = utcnow()
        with self.store.transaction() as session:
            rows = session.execute(
                select(CallbackRecord.id, PlanRecord.status)
                .join(PlanRecord, PlanRecord.id == CallbackRecord.plan_id)
                .where(CallbackRecord.state == "waiting", PlanRecord.status.in_(FINAL))
            ).all()
            for callback_id, status in rows:
                session.execute(update(CallbackRecord)
                                .where(CallbackRecord.id == callback_id, CallbackRecord.state == "waiting")
                                .values(state="pending", event=status, next_attempt_at=now))

    def claim_due(self) -> list[str]:
        """Due deliveries, each leased to this process for one attempt."""
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.callback_timeout_s + 30)
        with self.store.transaction() as session:
            due = session.execute(
                select(CallbackRecord.id)
                .where(CallbackRecord.state == "pending", CallbackRecord.next_attempt_at <= now,
                       (CallbackRecord.locked_until.is_(None)) | (CallbackRecord.locked_until < now))
                .order_by(CallbackRecord.next_attempt_at).limit(50)
            ).scalars().all()
            claimed = []
            for callback_id in due:
                with self._lock:
                    if callback_id in self._in_flight:
                        continue
                result = session.execute(
                    update(CallbackRecord)
                    .where(CallbackRecord.id == callback_id, CallbackRecord.state == "pending",
                           (CallbackRecord.locked_until.is_(None)) | (CallbackRecord.locked_until < now))
                    .values(locked_until=lease)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(callback_id)
        with self._lock:
            self._in_flight.update(claimed)
        return claimed

    def _deliver_logged(self, callback_id: str) -> None:
        try:
            self.deliver(callback_id)
        except Exception:
            log.exception("callback %s: delivery failed on our side", callback_id)
        finally:
            with self._lock:
                self._in_flight.discard(callback_id)

    def deliver(self, callback_id: str) -> None:
        """One attempt at a claimed callback; the outcome and the next attempt are stored."""
        with self.store.transaction() as session:
            callback = session.get(CallbackRecord, callback_id)
            plan = session.get(PlanRecord, callback.plan_id) if callback else None
            if callback is None or plan is None or callback.state != "pending":
                return
            url, attempt, organisation = callback.url, callback.attempts + 1, callback.organisation
            body = json.dumps(payload(plan, callback), separators=(",", ":")).encode()
            event = f"plan.{plan.status}"
        started = time.monotonic()
        status_code: int | None = None
        error = refused_address(url, self.settings)  # again: the name may point elsewhere now
        if error is None:
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(organisation_secret(self.store, organisation), body, int(time.time())),
                "X-Doorstep-Event": event,
                "X-Doorstep-Delivery": callback_id,
                "X-Doorstep-Attempt": str(attempt),
            }
            try:
                response = self._client.post(url, content=body, headers=headers)
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"the receiver answered {status_code}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"[:500]
        elapsed_ms = int((time.monotonic() - started) * 1000)
        self._record(callback_id, attempt, status_code, error, elapsed_ms)

    def _record(self, callback_id: str, attempt: int, status_code: int | None, error: str | None,
                elapsed_ms: int) -> None:
        now = utcnow()
        with self.store.transaction() as session:
            session.add(CallbackAttemptRecord(callback_id=callback_id, attempt=attempt, at=now,
                                              status_code=status_code, error=error, duration_ms=elapsed_ms))
            callback = session.get(CallbackRecord, callback_id)
            assert callback is not None
            callback.attempts = attempt
            callback.locked_until = None
            if error is None:
                callback.state, callback.finished_at, callback.next_attempt_at = "delivered", now, None
            elif attempt >= self.settings.callback_max_attempts:
                callback.state, callback.finished_at, callback.next_attempt_at = "failed", now, None
                log.warning("callback %s to plan %s: gave up after %d attempts (%s)", callback_id,
                            callback.plan_id, attempt, error)
            else:
                delay = min(self.settings.callback_backoff_s * 2 ** (attempt - 1), 3600.0)
                callback.next_attempt_at = now + timedelta(seconds=delay)
