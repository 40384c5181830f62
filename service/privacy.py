"""Residents' personal data: who sees it, and removing it after the retention period.

Personal data are the notes (health notes of bedridden or quarantined residents), contacts
(phone numbers) and names of residents, and the notes crews write in the ledger. They are
returned only to dispatchers, to the crew of the vehicle that visits the resident, and to
integrators whose key was granted them (:meth:`service.auth.Principal.sees_personal_data`). They
are never logged: nothing in the service formats a request, a plan document or an entry into a
log line, and validation errors are answered without the input they came with.

:func:`purge` blanks them (and addresses) in stored requests, plan documents and ledger
entries, and records in each plan's ledger that it did.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from service.auth import Principal
from service.ledger import Ledger, SystemEntry
from service.schemas import PlanDocument, RouteOut, StepOut
from service.store import EventRecord, PlanRecord, Store, utcnow

PERSONAL_FIELDS = ("notes", "contact", "name")
"""Fields of a visit (or a plan step) that are personal data."""
PERSONAL_STEP_FIELDS = tuple(f for f in PERSONAL_FIELDS if f in StepOut.model_fields)
PURGED_FIELDS = (*PERSONAL_FIELDS, "address")
"""What a purge removes: after the retention period nobody needs the address either."""
PERSONAL_EVENT_FIELDS = ("note",)


def _strip(item: dict[str, Any], fields: Iterable[str]) -> None:
    for name in fields:
        if item.get(name) is not None:
            item[name] = None


def redact_route(route: RouteOut, principal: Principal) -> RouteOut:
    """``route`` (of a plan document) as ``principal`` may see it."""
    if principal.sees_personal_data(route.vehicle_id):
        return route
    blank = dict.fromkeys(PERSONAL_STEP_FIELDS)
    return route.model_copy(update={"steps": [s.model_copy(update=blank) for s in route.steps]})


def redact_document(document: PlanDocument | None, principal: Principal) -> PlanDocument | None:
    """A plan document as ``principal`` may see it: each route redacted unless theirs to see."""
    if document is None:
        return None
    return document.model_copy(update={"routes": [redact_route(r, principal) for r in document.routes]})


def redact_request(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A stored request (or one built from it) as ``principal`` may see it."""
    if principal.sees_personal_data():
        return request
    request = copy.deepcopy(request)
    for kind in ("visits", "stops"):
        for item in request.get(kind) or []:
            _strip(item, PERSONAL_FIELDS)
    return request


def redact_payload(payload: dict[str, Any], principal: Principal, vehicle_id: str | None) -> dict[str, Any]:
    """A ledger entry's payload as ``principal`` may see it."""
    if principal.sees_personal_data(vehicle_id):
        return payload
    return {k: (None if k in PERSONAL_EVENT_FIELDS else v) for k, v in payload.items()}


def _purged_request(request: dict[str, Any]) -> dict[str, Any]:
    request = copy.deepcopy(request)
    for kind in ("visits", "stops"):
        for item in request.get(kind) or []:
            _strip(item, PURGED_FIELDS)
    return request


def _purged_document(document: dict[str, Any] | None) -> dict[str, Any] | None:
    if document is None:
        return None
    document = copy.deepcopy(document)
    for route in document.get("routes") or []:
        for step in route.get("steps") or []:
            _strip(step, PURGED_FIELDS)
    return document


def purge(
    store: Store, *, plan_id: str | None = None, older_than: datetime | None = None, actor: str = "cli"
) -> list[str]:
    """Remove personal data from plans (every version of ``plan_id``'s plan, or every plan created
    before ``older_than``) and their ledgers. Returns the ids of the plan versions purged now
    (already purged ones are skipped). Each ledger gets a ``purged`` entry."""
    if (plan_id is None) == (older_than is None):
        raise ValueError("give a plan id or a cut-off time, not both")
    with store.transaction() as session:
        query = select(PlanRecord).where(PlanRecord.purged_at.is_(None))
        if plan_id is not None:
            row = session.get(PlanRecord, plan_id)
            if row is None:
                raise LookupError(f'no plan "{plan_id}"')
            root = row.root_id or row.id
            query = query.where((PlanRecord.root_id == root) | (PlanRecord.id == root))
        else:
            query = query.where(PlanRecord.created_at < older_than)
        records = session.execute(query.with_for_update()).scalars().all()
        now = utcnow()
        roots: dict[str, list[str]] = {}
        for record in records:
            record.request = _purged_request(record.request)
            record.document = _purged_document(record.document)
            record.purged_at = now
            record.updated_at = now  # what the read path keeps of the plan is out of date
            roots.setdefault(record.root_id or record.id, []).append(record.id)
        for root in roots:
            events = session.execute(select(EventRecord).where(EventRecord.plan_id == root)).scalars().all()
            for event in events:
                if any(event.payload.get(k) is not None for k in PERSONAL_EVENT_FIELDS):
                    event.payload = {k: (None if k in PERSONAL_EVENT_FIELDS else v) for k, v in event.payload.items()}
    ledger = Ledger(store)
    for root, versions in roots.items():
        ledger.record(root, versions[-1], outcome=SystemEntry.PURGED.value, actor=actor,
                      payload={"versions": sorted(versions), "fields": list(PURGED_FIELDS)})
    return [v for versions in roots.values() for v in versions]
