"""Who is calling: API keys (also accepted as bearer tokens), roles and organisations.

A key is ``dsk_<prefix>_<secret>``: the prefix (8 hex digits) finds the key and is safe to show
in listings and logs; the secret is 32 random bytes. Only the SHA-256 of the whole key is
stored: the key is random, not a password, so a fast hash is right (nothing to brute-force) and
the comparison is constant-time (:func:`hmac.compare_digest`). The key is shown once, when made.

Roles:

- ``dispatcher``: everything in their organisation, personal data included;
- ``crew``: their own vehicle's route (personal data of its residents included) and recording
  its outcomes, in one plan (every re-planned version of it) until the end of that plan's day;
  nothing else. Vehicle ids are reused every day, so a crew key names its plan too: a crew link
  (:mod:`service.crew`) is such a key. A crew key made before keys had plans is bound to the
  first plan it opens (:meth:`Keys.bind_plan`);
- ``integrator``: submit problems, read plans, progress and versions; residents' notes and
  contacts only with ``can_read_personal``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, select, update

from service.store import ApiKeyRecord, Store, utcnow

TOKEN_PREFIX = "dsk_"

_KEY_BY_PREFIX = select(ApiKeyRecord.__table__).where(ApiKeyRecord.prefix == bindparam("prefix"))


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    CREW = "crew"
    INTEGRATOR = "integrator"


class AuthError(Exception):
    """No usable credentials (answered 401); the message says what to do."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as the API sees it."""

    role: Role
    organisation: str
    vehicle_id: str | None = None
    can_read_personal: bool = False
    key_prefix: str | None = None
    """None when the call came without a key (open mode)."""
    plan_id: str | None = None
    """Crew keys: the first version of the plan they reach (None: a key older than crew links,
    not bound yet)."""

    @property
    def actor(self) -> str:
        """Who recorded something, for the ledger: the key's prefix and role, never its secret."""
        return f"{self.role.value}:{self.key_prefix}" if self.key_prefix else "anonymous"

    def sees_personal_data(self, vehicle_id: str | None = None) -> bool:
        """Whether residents' notes and contacts (of ``vehicle_id``'s route, for a crew) may be shown."""
        if self.role is Role.DISPATCHER:
            return True
        if self.role is Role.CREW:
            return vehicle_id is not None and vehicle_id == self.vehicle_id
        return self.can_read_personal


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key, without its secret."""

    prefix: str
    role: Role
    organisation: str
    vehicle_id: str | None
    can_read_personal: bool
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    plan_id: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> KeyInfo:
        return cls(
            prefix=record.prefix,
            role=Role(record.role),
            organisation=record.organisation,
            vehicle_id=record.vehicle_id,
            can_read_personal=record.can_read_personal,
            label=record.label,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
            plan_id=record.plan_id,
            expires_at=record.expires_at,
        )


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _split(token: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix


class Keys:
    """API keys in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        *,
        role: Role,
        organisation: str,
        vehicle_id: str | None = None,
        can_read_personal: bool = False,
        label: str | None = None,
        plan_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key and its secret token (shown once: only its hash is kept).

        A crew key belongs to a vehicle of a plan (``plan_id``: its first version) and should
        expire with the plan's day (:func:`service.crew.end_of_day`)."""
        role = Role(role)
        if not organisation.strip():
            raise ValueError("organisation must not be empty")
        if role is Role.CREW and not vehicle_id:
            raise ValueError("a crew key needs --vehicle: the vehicle whose route it reads and records")
        if role is Role.CREW and not plan_id:
            raise ValueError("a crew key needs --plan: vehicle ids are reused every day, the plan says which day")
        if role is not Role.CREW and (vehicle_id or plan_id or expires_at):
            raise ValueError("only crew keys belong to a vehicle, a plan and a day")
        if role is Role.CREW and can_read_personal:
            raise ValueError("crews see their own residents' data already; --personal-data is for integrators")
        prefix = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(
            id=uuid.uuid4().hex,
            prefix=prefix,
            secret_sha256=sha256_hex(token),
            role=role.value,
            organisation=organisation.strip(),
            vehicle_id=vehicle_id,
            can_read_personal=can_read_personal or role is Role.DISPATCHER,
            label=label,
            created_at=utcnow(),
            revoked_at=None,
            plan_id=plan_id,
            expires_at=expires_at,
        )
        with self.store.transaction() as session:
            session.add(record)
            session.flush()
            info = KeyInfo.of(record)
        return info, token

    def list(self, *, plan_id: str | None = None) -> list[KeyInfo]:
        """Every key, oldest first; with ``plan_id``, only the crew keys of that plan."""
        query = select(ApiKeyRecord).order_by(ApiKeyRecord.created_at)
        if plan_id is not None:
            query = query.where(ApiKeyRecord.plan_id == plan_id)
        with self.store.transaction() as session:
            return [KeyInfo.of(r) for r in session.execute(query).scalars().all()]

    def get(self, prefix: str) -> KeyInfo | None:
        with self.store.transaction() as session:
            record = session.execute(select(ApiKeyRecord).where(ApiKeyRecord.prefix == prefix)).scalar_one_or_none()
            return None if record is None else KeyInfo.of(record)

    def bind_plan(self, prefix: str, plan_id: str, expires_at: datetime | None) -> str | None:
        """Bind a crew key made before keys had plans to ``plan_id`` (the first plan it opens),
        expiring at ``expires_at``; the plan it is bound to afterwards (another one if a
        concurrent call bound it first). Only the first binding counts."""
        with self.store.transaction() as session:
            session.execute(
                update(ApiKeyRecord)
                .where(ApiKeyRecord.prefix == prefix, ApiKeyRecord.plan_id.is_(None),
                       ApiKeyRecord.role == Role.CREW.value)
                .values(plan_id=plan_id, expires_at=expires_at)
            )
            return session.execute(
                select(ApiKeyRecord.plan_id).where(ApiKeyRecord.prefix == prefix)
            ).scalar_one_or_none()

    def revoke(self, prefix: str) -> KeyInfo | None:
        """Revoke the key with ``prefix`` (already revoked: unchanged). None if there is none."""
        prefix = prefix.removeprefix(TOKEN_PREFIX).split("_", 1)[0]
        with self.store.transaction() as session:
            record = session.execute(select(ApiKeyRecord).where(ApiKeyRecord.prefix == prefix)).scalar_one_or_none()
            if record is None:
                return None
            if record.revoked_at is None:
                record.revoked_at = utcnow()
            session.flush()
            return KeyInfo.of(record)

    def any_created(self) -> bool:
        """Whether a key was ever made, revoked or not: ``auto`` mode stays closed once one was.

        Revoking the last key must not reopen anonymous access. Revoked keys stay as rows (only
        ``revoked_at`` is set; nothing deletes them), so their presence is the record.
        """
        with self.store.transaction() as session:
            found = session.execute(select(ApiKeyRecord.id).limit(1)).first()
        return found is not None

    def authenticate(self, token: str) -> Principal:
        """The principal of ``token``; :class:`AuthError` if it is malformed, unknown, revoked or
        expired."""
        return self.authenticate_until(token)[0]

    def authenticate_until(self, token: str) -> tuple[Principal, datetime | None]:
        """The principal of ``token`` and when its key expires (None: not by date)."""
        prefix = _split(token.strip())
        if prefix is None:
            raise AuthError("malformed API key: keys look like dsk_<8 hex digits>_<secret>")
        # Every call with a key comes here: a prebuilt statement on a plain connection, not an ORM
        # session (five times cheaper); the row has the record's columns by the same names.
        record = self.store.read_one(_KEY_BY_PREFIX, prefix=prefix)
        stored = record.secret_sha256 if record else sha256_hex("")
        matches = hmac.compare_digest(stored, sha256_hex(token.strip()))
        if record is None or not matches:
            raise AuthError("unknown API key")
        if record.revoked_at is not None:
            raise AuthError(f"API key {prefix} was revoked; ask a dispatcher for a new one")
        if record.expires_at is not None and record.expires_at <= utcnow():
            raise AuthError(f"API key {prefix} expired at the end of its plan's day "
                            f"({record.expires_at:%Y-%m-%d %H:%M} UTC); ask a dispatcher for today's link")
        principal = Principal(
            role=Role(record.role),
            organisation=record.organisation,
            vehicle_id=record.vehicle_id,
            can_read_personal=record.can_read_personal,
            key_prefix=record.prefix,
            plan_id=record.plan_id,
        )
        return principal, record.expires_at


class PrincipalCache:
    """Recently authenticated keys, for ``ttl_s`` seconds: a read does not look its key up again.

    Every call with a key used to cost a database round trip and, being blocking work, a hop to
    the thread pool; a crew's phone or a dispatcher's screen sends the same key again and again.
    Only successes are kept, by the SHA-256 of the whole key (a near miss of a valid key is not a
    hit), and a key's own expiry is checked on every hit. A key revoked through this process is
    forgotten at once (:meth:`forget`); one revoked elsewhere (the CLI, another API process)
    stops working within ``ttl_s``.
    """

    def __init__(self, ttl_s: float, *, max_keys: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._entries: dict[str, tuple[Principal, datetime | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get(sha256_hex(token))
        if entry is None:
            return None
        principal, expires_at, cached_until = entry
        if time.monotonic() >= cached_until or (expires_at is not None and expires_at <= utcnow()):
            return None
        return principal

    def put(self, token: str, principal: Principal, expires_at: datetime | None) -> None:
        if self.ttl_s <= 0 or (principal.role is Role.CREW and principal.plan_id is None):
            return  # an old crew key binds to the first plan it opens: its next call must see that
        with self._lock:
            if len(self._entries) >= self.max_keys:
                self._entries.clear()  # many distinct keys in ttl_s: start again, not an LRU's bookkeeping
            self._entries[sha256_hex(token)] = (principal, expires_at, time.monotonic() + self.ttl_s)

    def forget(self, prefix: str) -> None:
        """Drop the key with ``prefix`` (it was just revoked)."""
        with self._lock:
            for digest in [d for d, (p, _, _) in self._entries.items() if p.key_prefix == prefix]:
                del self._entries[digest]
