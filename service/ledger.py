"""The field ledger: "test one, record one, cross off one".

Every change made in the field is one append-only entry (``plan_events``): who (the key's role
and prefix), when (the server's clock, and the time of day the crew gives), what (an outcome of
a step, its times, people sampled and tubes used, a note). Nothing is updated or deleted: a
later entry for the same step supersedes an earlier one in the *state*, which is always derived
from the entries (:func:`step_states`), and the earlier one stays in the history. A resubmission
with the same idempotency key is applied once (unique per plan) and answers with the first entry.

The ledger of a plan spans all its versions: entries are kept under the first version's id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.store import EventRecord, Store, utcnow


class Outcome(StrEnum):
    """What a crew records for a step."""

    ARRIVED = "arrived"  # at the door or the stop, serving: the step is in progress
    DONE = "done"  # sampled (people sampled, tubes used)
    NOT_HOME = "not_home"  # nobody opened: may be retried later in the day
    REFUSED = "refused"
    UNREACHABLE = "unreachable"  # the address could not be reached (road closed, no access)
    SKIPPED = "skipped"  # not attempted (no time, dispatcher's call): still to do


class SystemEntry(StrEnum):
    """Entries the service itself writes."""

    REPLANNED = "replanned"
    """A version went live (at once, or when its draft was published)."""
    PURGED = "purged"
    DRAFTED = "drafted"
    """A draft version was made (re-plan or hand edit); its payload is the re-plan's, recorded
    again as ``replanned`` when it is published."""
    DISCARDED = "discarded"


FINAL = frozenset({Outcome.DONE, Outcome.NOT_HOME, Outcome.REFUSED, Outcome.UNREACHABLE, Outcome.SKIPPED})
ATTEMPTED = frozenset({Outcome.DONE, Outcome.NOT_HOME, Outcome.REFUSED, Outcome.UNREACHABLE})
"""Outcomes after which a re-plan leaves the step out (``not_home`` unless a retry is asked)."""


class IdempotencyConflict(Exception):
    """An idempotency key reused for a different entry."""


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    seq: int
    plan_id: str
    version_id: str
    vehicle_id: str | None
    step_id: str | None
    outcome: str
    payload: dict[str, Any]
    actor: str
    recorded_at: datetime
    idempotency_key: str | None

    @classmethod
    def of(cls, record: EventRecord) -> Event:
        return cls(
            id=record.id,
            seq=record.seq,
            plan_id=record.plan_id,
            version_id=record.version_id,
            vehicle_id=record.vehicle_id,
            step_id=record.step_id,
            outcome=record.outcome,
            payload=dict(record.payload or {}),
            actor=record.actor,
            recorded_at=record.recorded_at,
            idempotency_key=record.idempotency_key,
        )


def fingerprint(content: Mapping[str, Any]) -> str:
    """A digest of what an entry says, to tell a true resubmission from a reused key."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


class Ledger:
    """The entries of plans' ledgers in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        plan_id: str,
        version_id: str,
        *,
        outcome: str,
        payload: Mapping[str, Any],
        actor: str,
        vehicle_id: str | None = None,
        step_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Event, bool]:
        """Append an entry; ``(entry, True)``, or ``(first entry, False)`` when ``idempotency_key``
        was used before for the same content. :class:`IdempotencyConflict` if it was used for
        other content."""
        content = {"vehicle_id": vehicle_id, "step_id": step_id, "outcome": outcome, "payload": dict(payload)}
        digest = fingerprint(content)
        if idempotency_key is not None:
            existing = self._by_key(plan_id, idempotency_key)
            if existing is not None:
                return self._replayed(existing, digest)
        record = EventRecord(
            id=uuid.uuid4().hex,
            plan_id=plan_id,
            version_id=version_id,
            vehicle_id=vehicle_id,
            step_id=step_id,
            outcome=outcome,
            payload=dict(payload),
            actor=actor,
            recorded_at=utcnow(),
            idempotency_key=idempotency_key,
            fingerprint=digest,
        )
        try:
            with self.store.transaction() as session:
                session.add(record)
                session.flush()
                event = Event.of(record)
        except IntegrityError:
            # the same key, submitted twice at once: the other submission won
            existing = self._by_key(plan_id, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return self._replayed(existing, digest)
        return event, True

    def _by_key(self, plan_id: str, key: str) -> tuple[Event, str | None] | None:
        with self.store.transaction() as session:
            record = session.execute(
                select(EventRecord).where(EventRecord.plan_id == plan_id, EventRecord.idempotency_key == key)
            ).scalar_one_or_none()
            return None if record is None else (Event.of(record), record.fingerprint)

    @staticmethod
    def _replayed(existing: tuple[Event, str | None], digest: str) -> tuple[Event, bool]:
        event, stored = existing
        if stored != digest:
            raise IdempotencyConflict(
                f"idempotency key {event.idempotency_key!r} was already used for another entry "
                f"({event.outcome} of {event.step_id or 'the plan'}); use a new key for a new entry"
            )
        return event, False

    def events(self, plan_id: str) -> list[Event]:
        """Every entry of the plan's ledger (all versions), in the order recorded."""
        with self.store.transaction() as session:
            records = session.execute(
                select(EventRecord).where(EventRecord.plan_id == plan_id).order_by(EventRecord.seq)
            ).scalars().all()
            return [Event.of(r) for r in records]


@dataclass(slots=True)
class StepState:
    """Where one step stands, derived from its entries (last outcome wins, times accumulate)."""

    step_id: str
    vehicle_id: str | None = None
    outcome: Outcome | None = None
    at_s: int | None = None
    arrival_s: int | None = None
    departure_s: int | None = None
    people_sampled: int | None = None
    tubes_used: int | None = None
    history: list[Event] = field(default_factory=list)

    @property
    def in_progress(self) -> bool:
        return self.outcome is Outcome.ARRIVED

    @property
    def attempted(self) -> bool:
        return self.outcome in ATTEMPTED

    @property
    def sampled(self) -> bool:
        return self.outcome is Outcome.DONE


def step_states(events: Iterable[Event]) -> dict[str, StepState]:
    """The current state of each step that has entries."""
    states: dict[str, StepState] = {}
    for event in events:
        if event.step_id is None or event.outcome not in Outcome.__members__.values():
            continue
        state = states.setdefault(event.step_id, StepState(event.step_id))
        state.history.append(event)
        state.vehicle_id = event.vehicle_id or state.vehicle_id
        outcome = Outcome(event.outcome)
        payload = event.payload
        state.at_s = payload.get("at_s", state.at_s)
        if payload.get("arrival_s") is not None:
            state.arrival_s = payload["arrival_s"]
        if payload.get("departure_s") is not None:
            state.departure_s = payload["departure_s"]
        if outcome is Outcome.ARRIVED:
            if state.outcome is None or state.outcome is Outcome.SKIPPED or state.outcome is Outcome.NOT_HOME:
                state.outcome = outcome
            if state.arrival_s is None:
                state.arrival_s = payload.get("at_s")
            continue
        state.outcome = outcome
        state.people_sampled = payload.get("people_sampled") if outcome is Outcome.DONE else None
        state.tubes_used = payload.get("tubes_used") if outcome is Outcome.DONE else None
    return states
