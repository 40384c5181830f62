"""Draft versions: a re-plan or a hand edit the dispatcher checks before the crews see it.

A version's ``publication`` is ``published`` (the crews' as soon as it has routes: every first
version, and a re-plan asked with ``publish: true``, today's default), ``draft`` (the dispatcher's:
the crew day, ``Chain.current``, ``superseded_by`` and crew keys ignore it) or ``discarded``.

A plan has at most one draft at a time, made from its current version: a re-plan or a hand edit
while one waits is refused (409), so what the dispatcher publishes is always the diff they saw
against what the crews have. A hand edit of the draft itself replaces it.

The ledger keeps the history: ``drafted`` when a draft is made (with the payload a re-plan would
have recorded), ``replanned`` with that payload when it is published (the entry
:class:`service.field.Chain` reads cancellations from, so a discarded draft cancels nothing), and
``discarded``.

A hand edit that breaks rules is stored, flagged by its violations, and cannot be published
unless the dispatcher accepts them by name (``accept_violations``). A dispatcher would expect
that: a door 10 minutes late is often better than no visit, and it is the dispatcher's call to
make knowingly; refusing to store it (422) would lose the edit and leave them no way to send it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import update

from routing.errors import ProblemError
from routing.evaluate import evaluate
from routing.model import Problem
from routing.plan import Plan, Reason, Unassigned
from service.field.chain import Chain
from service.ledger import ATTEMPTED, Ledger, Outcome, SystemEntry
from service.networks import NetworkRegistry
from service.pipeline import document_of, prepare
from service.schemas import PlanRequest, Status, dump_document
from service.store import PlanRecord, PlanRow, Store, utcnow

PUBLISHED, DRAFT, DISCARDED = "published", "draft", "discarded"


class DraftConflict(Exception):
    """The plan's versions are not in a state that allows this (the API answers 409)."""


def drafted_payload(chain: Chain, version_id: str) -> dict[str, Any]:
    """What the ledger's ``drafted`` entry of a version says (empty for a version never drafted)."""
    found = [e.payload for e in chain.events
             if e.outcome == SystemEntry.DRAFTED.value and e.payload.get("to_version") == version_id]
    return dict(found[-1]) if found else {}


def _set_publication(store: Store, plan_id: str, expected: str, new: str) -> bool:
    with store.transaction() as session:
        result = session.execute(update(PlanRecord).where(PlanRecord.id == plan_id, PlanRecord.publication == expected)
                                 .values(publication=new, updated_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def publish(store: Store, chain: Chain, row: PlanRow, *, actor: str, accept_violations: bool = False) -> PlanRow:
    """Make draft ``row`` the crews' version; recorded in the ledger as a re-plan."""
    if row.publication == PUBLISHED:
        return row  # already (a repeated call)
    if row.publication == DISCARDED:
        raise DraftConflict(f"version {row.version} ({row.id}) was discarded: re-plan again")
    if row.document is None or not row.status.is_final:
        raise DraftConflict(f"version {row.version} ({row.id}) is {row.status.value}: publish it when it has routes")
    violations = row.document.get("violations") or []
    if violations and not accept_violations:
        listed = "; ".join(f'{v["kind"]} at {v.get("step_id") or v["vehicle_id"]}' for v in violations[:5])
        more = f" and {len(violations) - 5} more" if len(violations) > 5 else ""
        raise ProblemError(f"version {row.version} breaks {len(violations)} rule(s) ({listed}{more}): send it to "
                           "the crews anyway with accept_violations: true, or fix it", path=("accept_violations",))
    payload = drafted_payload(chain, row.id) or {"to_version": row.id}
    based_on = payload.get("from_version")
    current = chain.current
    if based_on is not None and current is not None and current.id != based_on:
        raise DraftConflict(f"version {row.version} was made from {based_on}, but the crews now have version "
                            f"{current.version} ({current.id}): discard it and re-plan")
    if not _set_publication(store, row.id, DRAFT, PUBLISHED):
        raise DraftConflict(f"version {row.version} ({row.id}) is no longer a draft")
    Ledger(store).record(row.root, row.id, outcome=SystemEntry.REPLANNED.value, actor=actor,
                         payload={**payload, "published": True, "violations_accepted": len(violations)})
    published = store.get(row.id)
    assert published is not None
    return published


def discard(store: Store, row: PlanRow, *, actor: str, replaced_by: str | None = None) -> PlanRow:
    """Throw draft ``row`` away (its solve, if still running, is cancelled)."""
    if row.publication == PUBLISHED:
        raise DraftConflict(f"version {row.version} ({row.id}) is published: the crews have it; re-plan instead")
    if row.publication == DRAFT and _set_publication(store, row.id, DRAFT, DISCARDED):
        if not row.status.is_final:
            store.request_cancel(row.id)
        Ledger(store).record(row.root, row.id, outcome=SystemEntry.DISCARDED.value, actor=actor,
                             payload={"version": row.id, "replaced_by": replaced_by})
    gone = store.get(row.id)
    assert gone is not None
    return gone


# -- hand edits ----------------------------------------------------------------------------------------


def hand_edit(
    store: Store, networks: NetworkRegistry, chain: Chain, base: PlanRow, routes: Mapping[str, Sequence[str]], *,
    actor: str, check_ids: Callable[[Problem, dict[str, list[str]]], None] | None = None,
) -> tuple[PlanRow, dict[str, Any]]:
    """A draft version of ``base`` (the current version, or the draft it replaces) with ``routes``
    (vehicle id -> visit, stop and break ids in order), scheduled and checked by the evaluator.
    Returns the new version and its plan document (violations included). ``check_ids`` raises
    for ids the problem lacks, naming the place (the API's)."""
    draft = chain.draft
    if draft is not None and draft.id != base.id:
        raise DraftConflict(f"plan {chain.root.id} has a draft, version {draft.version} ({draft.id}): edit that "
                            "one, or discard it first")
    current = chain.current
    if base.publication == PUBLISHED and (current is None or current.id != base.id):
        raise DraftConflict(f"version {base.version} ({base.id}) is not the crews' current version: edit the newest")
    if base.publication == DISCARDED:
        raise DraftConflict(f"version {base.version} ({base.id}) was discarded")
    if base.document is None or base.request is None or not base.status.is_final:
        raise DraftConflict(f"version {base.version} ({base.id}) is {base.status.value}: edit it when it has routes")
    request = PlanRequest.model_validate(base.request)
    prepared = prepare(request, networks)
    problem = prepared.problem
    if check_ids is not None:
        check_ids(problem, {k: list(v) for k, v in routes.items()})
    _check_recorded(chain, routes)
    evaluation = evaluate(problem, routes)
    before = {u["visit_id"]: u for u in base.document.get("unassigned") or []}
    unassigned = tuple(
        Unassigned(i, Reason(before[i]["reason"]), before[i].get("detail") or "", before[i].get("kind") or "visit")
        if i in before else Unassigned(i, Reason.LEFT_OUT_BY_HAND, "taken off every route by the dispatcher")
        for i in evaluation.missing)
    plan = Plan(routes=evaluation.routes, unassigned=unassigned, violations=evaluation.violations,
                cost=evaluation.cost, engine="hand edit")
    document = dump_document(document_of(prepared, plan))
    row = _insert_done(store, base, request, document)
    previous = drafted_payload(chain, base.id) if base.publication == DRAFT else {}
    Ledger(store).record(row.root, row.id, outcome=SystemEntry.DRAFTED.value, actor=actor, payload={
        **previous, "from_version": previous.get("from_version", base.id), "to_version": row.id,
        "hand_edit": True, "edited_version": base.id, "violations": len(evaluation.violations),
    })
    if base.publication == DRAFT:
        discard(store, base, actor=actor, replaced_by=row.id)
    return row, document


def _check_recorded(chain: Chain, routes: Mapping[str, Sequence[str]]) -> None:
    """A door a crew has already knocked on stays with that crew: it cannot be moved to another."""
    states = chain.states
    for vehicle_id, steps in routes.items():
        for i, step_id in enumerate(steps):
            state = states.get(step_id)
            if state is None or state.outcome not in ATTEMPTED | {Outcome.ARRIVED} or state.vehicle_id == vehicle_id:
                continue
            raise ProblemError(f'"{step_id}" was recorded by "{state.vehicle_id}" ({state.outcome.value}): it cannot '
                               f'move to "{vehicle_id}"', path=("routes", vehicle_id, i))


def _insert_done(store: Store, base: PlanRow, request: PlanRequest, document: dict[str, Any]) -> PlanRow:
    """A finished draft version after ``base``: it needs no solve, so it never enters the queue."""
    now = utcnow()
    record = PlanRecord(
        id=uuid.uuid4().hex, organisation=base.organisation, root_id=base.root, parent_id=base.id,
        version=store.next_version(base.root), name=f"{(base.name or 'plan').split(' (v')[0]} (hand edit)",
        status=Status.DONE.value, created_at=now, updated_at=now, started_at=now, finished_at=now,
        request=base.request, time_limit_s=base.time_limit_s, visits=len(request.visits),
        vehicles=len(request.vehicles), attempts=0, cancel_requested=False, document=document,
        summary=document["summary"], publication=DRAFT,
    )
    with store.transaction() as session:
        session.add(record)
    row = store.get(record.id, document=True)
    assert row is not None
    return row
