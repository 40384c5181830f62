"""Persistence of plans and their solve jobs (SQLAlchemy 2; SQLite by default, PostgreSQL too).

One table, ``plans``: the request as posted, the job's state (status, attempts, the worker
holding it and its heartbeat, a cancel flag), the progress while solving, and the plan document
when done. The table is the job queue: a worker claims the oldest queued job with one atomic
``UPDATE ... WHERE id = (SELECT ... WHERE status = 'queued' ... FOR UPDATE SKIP LOCKED)``
(SQLite has no row locks and ignores the clause; the single statement is atomic there).

Every write a worker makes names the worker (``AND worker_id = :me AND status = 'solving'``),
so a worker whose job was taken from it (stale heartbeat, re-queued) cannot overwrite anything.
The schema is created and upgraded by the Alembic migrations in ``service/migrations``
(:func:`migrate`), never by ``create_all``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    Row,
    Select,
    String,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator

from service.schemas import Status

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class PlanRecord(Base):
    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    time_limit_s: Mapped[float] = mapped_column(Float)
    visits: Mapped[int] = mapped_column(Integer)
    vehicles: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    organisation: Mapped[str] = mapped_column(String(100), default="default")
    root_id: Mapped[str | None] = mapped_column(String(32), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publication: Mapped[str] = mapped_column(String(16), default="published")
    """``published`` (crews see it once it has routes), ``draft`` (the dispatcher's, until published) or
    ``discarded`` (see :mod:`service.drafts`)."""


class EventRecord(Base):
    """One entry of a plan's field ledger (append-only): an outcome, a time, a replan, a purge."""

    __tablename__ = "plan_events"
    __table_args__ = (
        UniqueConstraint("plan_id", "idempotency_key", name="uq_plan_events_idempotency"),
        Index("ix_plan_events_plan_seq", "plan_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    plan_id: Mapped[str] = mapped_column(String(32), ForeignKey("plans.id"))
    """The first version of the plan: the ledger spans every version."""
    version_id: Mapped[str] = mapped_column(String(32))
    """The version the entry was recorded against."""
    vehicle_id: Mapped[str | None] = mapped_column(String(128))
    step_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    fingerprint: Mapped[str | None] = mapped_column(String(64))


class ApiKeyRecord(Base):
    """An API key or bearer token: only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    organisation: Mapped[str] = mapped_column(String(100))
    vehicle_id: Mapped[str | None] = mapped_column(String(128))
    can_read_personal: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan_id: Mapped[str | None] = mapped_column(String(32), index=True)
    """Crew keys: the first version of the plan they reach (and so every version of it)."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Crew keys: the end of their plan's day; calls after it answer 401."""


@dataclass(frozen=True, slots=True)
class PlanHead:
    """What a read of a plan checks first: whose it is, whether it is shown, and its stamp (whether
    it changed); no JSON column to decode."""

    id: str
    organisation: str
    root_id: str | None
    publication: str
    status: Status
    updated_at: datetime
    purged_at: datetime | None

    @property
    def root(self) -> str:
        return self.root_id or self.id


@dataclass(frozen=True, slots=True)
class PlanRow:
    """A plan as read from the store (detached from any session)."""

    id: str
    name: str | None
    status: Status
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    time_limit_s: float
    visits: int
    vehicles: int
    attempts: int
    cancel_requested: bool
    worker_id: str | None
    heartbeat_at: datetime | None
    progress: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: dict[str, Any] | None
    request: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    organisation: str = "default"
    root_id: str | None = None
    parent_id: str | None = None
    version: int = 1
    purged_at: datetime | None = None
    publication: str = "published"

    @property
    def root(self) -> str:
        """The first version's id: what the ledger of every version is kept under."""
        return self.root_id or self.id


_LIGHT = (
    PlanRecord.id,
    PlanRecord.name,
    PlanRecord.status,
    PlanRecord.created_at,
    PlanRecord.updated_at,
    PlanRecord.started_at,
    PlanRecord.finished_at,
    PlanRecord.time_limit_s,
    PlanRecord.visits,
    PlanRecord.vehicles,
    PlanRecord.attempts,
    PlanRecord.cancel_requested,
    PlanRecord.worker_id,
    PlanRecord.heartbeat_at,
    PlanRecord.progress,
    PlanRecord.summary,
    PlanRecord.error,
    PlanRecord.organisation,
    PlanRecord.root_id,
    PlanRecord.parent_id,
    PlanRecord.version,
    PlanRecord.purged_at,
    PlanRecord.publication,
)


def _get_statement(*, request: bool, document: bool) -> Select[Any]:
    columns: list[Any] = [*_LIGHT]
    if request:
        columns.append(PlanRecord.request)
    if document:
        columns.append(PlanRecord.document)
    return select(*columns).where(PlanRecord.id == bindparam("plan_id"))


# The reads every request makes (a plan by id, a key by prefix: see Store.read_one) are built once.
# Built per call, SQLAlchemy spent about 0.7 ms of a plan read making the 23-column select, keying
# its cache and adapting the cached result map to the new column objects (a comparison per
# column), where SQLite answers in tens of microseconds.
_GET = {(r, d): _get_statement(request=r, document=d) for r in (False, True) for d in (False, True)}
_DOCUMENT = select(PlanRecord.document).where(PlanRecord.id == bindparam("plan_id"))
_HEAD = select(
    PlanRecord.id, PlanRecord.organisation, PlanRecord.root_id, PlanRecord.publication, PlanRecord.status,
    PlanRecord.updated_at, PlanRecord.purged_at,
).where(PlanRecord.id == bindparam("plan_id"))


def _row(values: Any, *, request: Any = None, document: Any = None) -> PlanRow:
    data = dict(values._mapping)
    data["status"] = Status(data["status"])
    return PlanRow(**data, request=request, document=document)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    plan_id: str
    request: dict[str, Any]
    time_limit_s: float
    attempts: int


@dataclass(frozen=True, slots=True)
class Recovery:
    requeued: list[str]
    failed: list[str]


POOL_SIZE = 40
"""Connections kept open: as many as the API's thread pool has threads (AnyIO's default, 40).
With SQLAlchemy's default of 5 (+10 overflow), reads from 40 threads kept opening and closing
connections (a SQLite connection runs its pragmas each time): most of a plan read's cost."""
POOL_OVERFLOW = 10


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and their directory created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = not parsed.database or parsed.database == ":memory:"
        if parsed.database and not in_memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # An in-memory database lives in one connection (SingletonThreadPool): no pool to size.
        pool: dict[str, Any] = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic's ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """Plans and jobs in a SQL database. Thread-safe; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.reads_are_local = engine.dialect.name == "sqlite"
        """Whether a read is a lookup in a local file rather than a round trip to a server: an
        embedded SQLite database in WAL mode, whose readers never wait for a writer."""

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def transaction(self) -> AbstractContextManager[Session]:
        """One short transaction, for the modules that keep their own tables (ledger, keys)."""
        return self._session()

    def ping(self) -> None:
        with self._session() as session:
            session.execute(select(1))

    # -- API side ------------------------------------------------------------------------------

    def create(
        self,
        request: dict[str, Any],
        *,
        name: str | None,
        time_limit_s: float,
        visits: int,
        vehicles: int,
        organisation: str = "default",
        parent: PlanRow | None = None,
        publication: str = "published",
    ) -> PlanRow:
        """A queued plan; with ``parent``, its next version (same organisation and ledger), a
        ``draft`` one if asked (:mod:`service.drafts`)."""
        now = utcnow()
        plan_id = uuid.uuid4().hex
        record = PlanRecord(
            id=plan_id,
            organisation=parent.organisation if parent else organisation,
            root_id=parent.root if parent else plan_id,
            parent_id=parent.id if parent else None,
            version=self.next_version(parent.root) if parent else 1,
            name=name,
            status=Status.QUEUED.value,
            created_at=now,
            updated_at=now,
            request=request,
            time_limit_s=time_limit_s,
            visits=visits,
            vehicles=vehicles,
            attempts=0,
            cancel_requested=False,
            publication=publication,
        )
        with self._session() as session:
            session.add(record)
        row = self.get(record.id)
        assert row is not None
        return row

    def next_version(self, root_id: str) -> int:
        """The number of a plan's next version: after every one made, discarded drafts included."""
        with self._session() as session:
            newest = session.execute(select(func.max(PlanRecord.version)).where(
                (PlanRecord.root_id == root_id) | (PlanRecord.id == root_id))).scalar_one_or_none()
        return int(newest or 0) + 1

    def read_one(self, statement: Executable, **params: Any) -> Row[Any] | None:
        """The first row of a prebuilt read-only ``statement``, on a plain connection.

        For the reads on every request's path: no ORM session to open and commit, and a statement
        built once is its own compiled-cache entry (see ``_GET``).
        """
        with self.engine.connect() as connection:
            return connection.execute(statement, params).first()

    def get(self, plan_id: str, *, request: bool = False, document: bool = False) -> PlanRow | None:
        found = self.read_one(_GET[request, document], plan_id=plan_id)
        if found is None:
            return None
        data = dict(found._mapping)
        return _row(
            _Values({k: v for k, v in data.items() if k not in ("request", "document")}),
            request=data.get("request"),
            document=data.get("document"),
        )

    def head(self, plan_id: str) -> PlanHead | None:
        """The plan's :class:`PlanHead`, None if there is no such plan."""
        found = self.read_one(_HEAD, plan_id=plan_id)
        if found is None:
            return None
        return PlanHead(found.id, found.organisation, found.root_id, found.publication, Status(found.status),
                        found.updated_at, found.purged_at)

    def document(self, plan_id: str) -> dict[str, Any] | None:
        """Only the plan's document (its stored JSON form), for a caller that has its row."""
        found = self.read_one(_DOCUMENT, plan_id=plan_id)
        return None if found is None else found.document

    def request_parts(self, plan_ids: list[str], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Only the ``keys`` lists of each plan's request (e.g. its visits, not its matrices): the
        database extracts them, so a large request is never read whole."""
        columns = [PlanRecord.request[key].label(key) for key in keys]
        with self.engine.connect() as connection:
            rows = connection.execute(select(PlanRecord.id, *columns).where(PlanRecord.id.in_(plan_ids))).all()
        return {row.id: {key: getattr(row, key) or [] for key in keys} for row in rows}

    def page(
        self, *, offset: int = 0, limit: int = 50, status: Status | None = None, organisation: str | None = None
    ) -> tuple[list[PlanRow], int]:
        """A page of plans, newest first, and how many there are in all (of ``organisation``: all if None)."""
        where = [] if status is None else [PlanRecord.status == status.value]
        if organisation is not None:
            where.append(PlanRecord.organisation == organisation)
        with self._session() as session:
            count = session.execute(select(func.count()).select_from(PlanRecord).where(*where)).scalar_one()
            rows = session.execute(
                select(*_LIGHT)
                .where(*where)
                .order_by(PlanRecord.created_at.desc(), PlanRecord.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return [_row(r) for r in rows], int(count)

    def final_among(self, plan_ids: list[str]) -> set[str]:
        """Which of ``plan_ids`` are done, failed or cancelled (one query for many waiting requests)."""
        final = [status.value for status in Status if status.is_final]
        with self._session() as session:
            found = session.execute(
                select(PlanRecord.id).where(PlanRecord.id.in_(plan_ids), PlanRecord.status.in_(final))
            ).scalars().all()
        return set(found)

    def versions(self, root_id: str) -> list[PlanRow]:
        """Every version of a plan, first to last."""
        with self._session() as session:
            rows = session.execute(
                select(*_LIGHT)
                .where((PlanRecord.root_id == root_id) | (PlanRecord.id == root_id))
                .order_by(PlanRecord.version, PlanRecord.created_at)
            ).all()
        return [_row(r) for r in rows]

    def request_cancel(self, plan_id: str) -> PlanRow | None:
        """Cancel a queued job at once; flag a solving one (its worker stops and keeps the best plan).

        A job already finished is left as it is. Returns the plan after the change.
        """
        now = utcnow()
        with self._session() as session:
            session.execute(
                update(PlanRecord)
                .where(PlanRecord.id == plan_id, PlanRecord.status == Status.QUEUED.value)
                .values(status=Status.CANCELLED.value, cancel_requested=True, finished_at=now, updated_at=now)
            )
            session.execute(
                update(PlanRecord)
                .where(PlanRecord.id == plan_id, PlanRecord.status == Status.SOLVING.value)
                .values(cancel_requested=True, updated_at=now)
            )
        return self.get(plan_id)

    # -- worker side ---------------------------------------------------------------------------

    def claim(self, worker_id: str) -> ClaimedJob | None:
        """Take the oldest queued job, atomically; None when there is none."""
        oldest = (
            select(PlanRecord.id)
            .where(PlanRecord.status == Status.QUEUED.value)
            .order_by(PlanRecord.created_at, PlanRecord.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return self._take(oldest, worker_id)

    def claim_plan(self, plan_id: str, worker_id: str) -> ClaimedJob | None:
        """Take this queued job (a Celery task names its plan), atomically; None when it is not queued."""
        return self._take(plan_id, worker_id)

    def _take(self, plan_id: Any, worker_id: str) -> ClaimedJob | None:
        """Mark the plan ``plan_id`` (an id, or a subquery choosing one) solving by ``worker_id``
        if it is still queued, in one UPDATE, and return it as a job."""
        now = utcnow()
        statement = (
            update(PlanRecord)
            .where(PlanRecord.id == plan_id, PlanRecord.status == Status.QUEUED.value)
            .values(
                status=Status.SOLVING.value,
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                updated_at=now,
                attempts=PlanRecord.attempts + 1,
                progress=None,
                error=None,
            )
            .returning(PlanRecord.id, PlanRecord.request, PlanRecord.time_limit_s, PlanRecord.attempts)
        )
        with self._session() as session:
            found = session.execute(statement).first()
        if found is None:
            return None
        return ClaimedJob(found.id, found.request, found.time_limit_s, found.attempts)

    def _mine(self, plan_id: str, worker_id: str) -> list[Any]:
        return [
            PlanRecord.id == plan_id,
            PlanRecord.worker_id == worker_id,
            PlanRecord.status == Status.SOLVING.value,
        ]

    def heartbeat(self, plan_id: str, worker_id: str) -> bool:
        """Record that the worker lives; True while it should go on (still its job, no cancel)."""
        now = utcnow()
        with self._session() as session:
            found = session.execute(
                update(PlanRecord)
                .where(*self._mine(plan_id, worker_id))
                .values(heartbeat_at=now)
                .returning(PlanRecord.cancel_requested)
            ).first()
        return found is not None and not found.cancel_requested

    def save_progress(self, plan_id: str, worker_id: str, progress: dict[str, Any]) -> None:
        now = utcnow()
        with self._session() as session:
            session.execute(
                update(PlanRecord)
                .where(*self._mine(plan_id, worker_id))
                .values(progress=progress, heartbeat_at=now, updated_at=now)
            )

    def finish(
        self,
        plan_id: str,
        worker_id: str,
        *,
        document: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        progress: dict[str, Any] | None = None,
    ) -> Status | None:
        """Store the outcome: done (a document, no cancel), cancelled (cancel asked) or failed (error).

        Returns the final status, or None when the job is no longer this worker's.
        """
        now = utcnow()
        with self._session() as session:
            record = session.execute(
                select(PlanRecord).where(*self._mine(plan_id, worker_id)).with_for_update()
            ).scalar_one_or_none()
            if record is None:
                return None
            if error is not None:
                status = Status.FAILED
            elif record.cancel_requested:
                status = Status.CANCELLED
            else:
                status = Status.DONE
            record.status = status.value
            record.document = document
            record.summary = document["summary"] if document else None
            record.error = error
            if progress is not None:
                record.progress = progress
            record.finished_at = now
            record.updated_at = now
            record.heartbeat_at = None
        return status

    def release(self, plan_id: str, worker_id: str) -> bool:
        """Put a job back in the queue (the worker is shutting down), not counting the attempt."""
        now = utcnow()
        with self._session() as session:
            result = session.execute(
                update(PlanRecord)
                .where(*self._mine(plan_id, worker_id))
                .values(
                    status=Status.QUEUED.value,
                    worker_id=None,
                    heartbeat_at=None,
                    attempts=PlanRecord.attempts - 1,
                    progress=None,
                    updated_at=now,
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- supervision ---------------------------------------------------------------------------

    def recover(
        self, *, stale_after_s: float, max_attempts: int, dead_workers: frozenset[str] = frozenset()
    ) -> Recovery:
        """Re-queue solving jobs whose worker is gone (heartbeat older than ``stale_after_s``, or
        a worker id in ``dead_workers``); fail those already started ``max_attempts`` times.

        A job cancelled while its worker died is marked cancelled, not re-queued.
        """
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after_s)
        requeued: list[str] = []
        failed: list[str] = []
        with self._session() as session:
            orphan = PlanRecord.heartbeat_at < cutoff
            if dead_workers:
                orphan = orphan | PlanRecord.worker_id.in_(sorted(dead_workers))
            records = (
                session.execute(
                    select(PlanRecord)
                    .where(PlanRecord.status == Status.SOLVING.value, orphan)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for record in records:
                record.worker_id = None
                record.heartbeat_at = None
                record.updated_at = now
                if record.cancel_requested:
                    record.status = Status.CANCELLED.value
                    record.finished_at = now
                    failed.append(record.id)
                elif record.attempts >= max_attempts:
                    record.status = Status.FAILED.value
                    record.finished_at = now
                    record.error = {
                        "type": "interrupted",
                        "msg": f"the solve was interrupted {record.attempts} times (worker stopped or "
                        f"crashed); gave up after {max_attempts} attempts",
                        "loc": None,
                    }
                    failed.append(record.id)
                else:
                    record.status = Status.QUEUED.value
                    record.progress = None
                    requeued.append(record.id)
        return Recovery(requeued, failed)

    def overdue(self, *, grace_s: float) -> list[tuple[str, str | None]]:
        """Solving jobs running longer than their time limit plus ``grace_s``: (plan id, worker id)."""
        now = utcnow()
        with self._session() as session:
            rows = session.execute(
                select(PlanRecord.id, PlanRecord.worker_id, PlanRecord.started_at, PlanRecord.time_limit_s).where(
                    PlanRecord.status == Status.SOLVING.value
                )
            ).all()
        return [
            (r.id, r.worker_id)
            for r in rows
            if r.started_at is not None and (now - r.started_at).total_seconds() > r.time_limit_s + grace_s
        ]

    def fail(self, plan_id: str, error: dict[str, Any]) -> None:
        """Mark a solving job failed from outside its worker (hard time limit)."""
        now = utcnow()
        with self._session() as session:
            session.execute(
                update(PlanRecord)
                .where(PlanRecord.id == plan_id, PlanRecord.status == Status.SOLVING.value)
                .values(
                    status=Status.FAILED.value, error=error, finished_at=now, updated_at=now, heartbeat_at=None
                )
            )


class _Values:
    """A stand-in for a Row: what :func:`_row` reads (``._mapping``)."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping
