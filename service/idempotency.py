"""Safe retries: an ``Idempotency-Key`` header on ``POST /v1/plans`` and re-plans.

A system that submits a day and loses the answer (a timeout, a dropped connection) sends the same
request again with the same key: it gets the first answer (the same plan id), and no second
solve is queued. The same key with another body (or for another endpoint) is a 409 saying so:
the caller reused a key by mistake. A key is scoped to the credential that sent it (the SHA-256 of
the API key, so within one organisation's key), kept ``DOORSTEP_IDEMPOTENCY_TTL_S`` (a day), and
stored in the database, so every API process and a restart see it.

This is an ASGI middleware over the routes it covers, not code in them: the first call reserves
the key (a unique row: a concurrent duplicate sees it and gets 409 "in progress"), the route
runs, and a successful (2xx) answer is stored and replayed verbatim, with
``Idempotent-Replayed: true``. An error answer releases the key: the caller may fix the request and
retry with the same key. Ledger writes (``POST /v1/plans/{id}/events``) keep their own key
handling (:mod:`service.ledger`), which also accepts the key in the body, for crews' phones.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.store import Base, JSONType, Store, UTCDateTime, utcnow

HEADER = b"idempotency-key"
COVERED = re.compile(r"^/v1/plans(/[^/]+/replan)?/?$")
"""Plan submissions and re-plans (POST)."""
KEPT_HEADERS = (b"content-type", b"location")
MAX_KEY_LENGTH = 200
ABANDONED_S = 600.0
"""Longer than any request runs (a waiting one is capped by DOORSTEP_MAX_WAIT_S)."""


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSONType)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Keys:
    """Idempotency keys in the store."""

    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    def reserve(self, scope: str, key: str, target: str, fingerprint: str) -> IdempotencyRecord | None:
        """Reserve ``key`` for this request (None), or the record that holds it already.

        A reservation with no answer after ``ABANDONED_S`` belonged to a request that died with its
        process: it is dropped, or its key would answer "in progress" for a day."""
        now = utcnow()
        abandoned = now - timedelta(seconds=ABANDONED_S)
        with self.store.transaction() as session:
            session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
                (IdempotencyRecord.expires_at <= now)
                | (IdempotencyRecord.status_code.is_(None) & (IdempotencyRecord.created_at < abandoned))))
        try:
            with self.store.transaction() as session:
                session.add(IdempotencyRecord(
                    id=uuid.uuid4().hex, scope=scope, key=key, target=target, fingerprint=fingerprint,
                    created_at=now, expires_at=now + timedelta(seconds=self.ttl_s)))
            return None
        except IntegrityError:
            with self.store.transaction() as session:
                found = session.execute(select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)).scalar_one_or_none()
                if found is None:  # expired and deleted between the two: the caller retries
                    return IdempotencyRecord(target=target, fingerprint=fingerprint, status_code=None)
                session.expunge(found)
                return found

    def complete(self, scope: str, key: str, status_code: int, headers: list[list[str]], body: bytes) -> None:
        with self.store.transaction() as session:
            session.execute(update(IdempotencyRecord)
                            .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
                            .values(status_code=status_code, headers=headers, body=body))

    def release(self, scope: str, key: str) -> None:
        with self.store.transaction() as session:
            session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key))

    def purge_expired(self) -> int:
        with self.store.transaction() as session:
            result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow()))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _credential_scope(headers: dict[bytes, bytes]) -> str:
    """The SHA-256 of the key that sent the call ("open" without one): a first answer is replayed
    only to the key that got it."""
    token = headers.get(b"authorization", b"").partition(b" ")[2].strip() or headers.get(b"x-api-key", b"").strip()
    return hashlib.sha256(b"key:" + token).hexdigest() if token else "open"


def fingerprint_of(body: bytes) -> str:
    """The body's meaning, not its bytes: the same JSON re-serialised (spaces, key order) is the same."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _conflict(message: str) -> bytes:
    return json.dumps({"detail": message}).encode()


class IdempotencyMiddleware:
    """See the module's notes. Reads the store through ``scope["app"].state.store`` (the lifespan's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not COVERED.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key = headers.get(HEADER, b"").decode("latin-1").strip()
        if not key:
            await self.app(scope, receive, send)
            return
        json_type = [(b"content-type", b"application/json")]
        if len(key) > MAX_KEY_LENGTH:
            await _answer(send, 400, _conflict(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters"),
                          json_type)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        state = scope["app"].state
        keys = Keys(state.store, state.settings.idempotency_ttl_s)
        credential = _credential_scope(headers)
        target = f"POST {scope['path'].rstrip('/')}"
        fingerprint = fingerprint_of(body)
        held = await run_in_threadpool(keys.reserve, credential, key, target, fingerprint)
        if held is not None:
            if held.target != target or held.fingerprint != fingerprint:
                what = "another endpoint" if held.target != target else "a different body"
                await _answer(send, 409, _conflict(
                    f'Idempotency-Key "{key}" was already used with {what}: use a new key for a new request'),
                    json_type)
            elif held.status_code is None:
                await _answer(send, 409, _conflict(
                    f'a request with Idempotency-Key "{key}" is still being processed: retry in a moment'),
                    json_type)
            else:
                replayed = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (held.headers or [])]
                await _answer(send, held.status_code, held.body or b"",
                              [*replayed, (b"idempotent-replayed", b"true")])
            return
        await self._first(scope, body, receive, send, keys, credential, key)

    async def _first(self, scope: Scope, body: bytes, receive: Receive, send: Send, keys: Keys, credential: str,
                     key: str) -> None:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        kept: list[list[str]] = []
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kept.extend([k.decode("latin-1"), v.decode("latin-1")] for k, v in message.get("headers", [])
                            if k.lower() in KEPT_HEADERS)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            if 200 <= status < 300:
                await run_in_threadpool(keys.complete, credential, key, status, kept, b"".join(parts))
            else:
                await run_in_threadpool(keys.release, credential, key)
