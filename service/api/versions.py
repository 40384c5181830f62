"""A plan's draft versions: publish one to the crews, discard one, save a hand edit as one
(:mod:`service.drafts`). A re-plan asked with ``"publish": false`` makes a draft too
(``POST /v1/plans/{id}/replan``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from routing.errors import ProblemError
from service import drafts
from service.api import deps
from service.api.deps import DispatcherDep, NetworksDep, Responses, SettingsDep, StoreDep, plan_of
from service.api.evaluate import _check_ids
from service.api.field import _chain
from service.draft_schemas import DraftOut, HandEditIn, PublishIn
from service.planning import plan_url
from service.store import PlanRow

router = APIRouter(prefix="/v1/plans", tags=["field operations"])

RESPONSES: Responses = {
    **deps.AUTH, 404: {"description": "No plan with this id (in your organisation)."},
    409: {"description": "Not a draft that can be published or discarded now (it says why)."},
    422: {"description": "Bad input, naming the field."},
}


def _out(row: PlanRow) -> DraftOut:
    violations = list((row.document or {}).get("violations") or []) if row.document else []
    missing = [u["visit_id"] for u in (row.document or {}).get("unassigned") or []]
    return DraftOut(id=row.id, version=row.version, parent_id=row.parent_id, status=row.status.value,
                    publication=row.publication, url=plan_url(row.id),
                    feasible=None if row.document is None else not violations, violations=violations, missing=missing)


def _conflict(error: drafts.DraftConflict) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(error))


@router.post("/{plan_id}/publish", operation_id="publish_version", summary="Send a draft version to the crews",
             response_model=DraftOut, responses=RESPONSES)
def publish_version(plan_id: str, store: StoreDep, principal: DispatcherDep, body: PublishIn | None = None) -> DraftOut:
    """The draft becomes the current version: the crew day, crew links and `superseded_by` show it
    from now on. A version that breaks rules needs `accept_violations: true` (422 otherwise,
    listing them). Publishing a published version again changes nothing."""
    row = plan_of(store, plan_id, principal, document=True)
    try:
        published = drafts.publish(store, _chain(store, row), row, actor=principal.actor,
                                   accept_violations=bool(body and body.accept_violations))
    except drafts.DraftConflict as error:
        raise _conflict(error) from None
    return _out(store.get(published.id, document=True) or published)


@router.post("/{plan_id}/discard", operation_id="discard_version", summary="Throw a draft version away",
             response_model=DraftOut, responses=RESPONSES)
def discard_version(plan_id: str, store: StoreDep, principal: DispatcherDep) -> DraftOut:
    """The crews never see it; a solve still running is cancelled. Nothing it cancelled or added
    takes effect."""
    row = plan_of(store, plan_id, principal)
    try:
        return _out(drafts.discard(store, row, actor=principal.actor))
    except drafts.DraftConflict as error:
        raise _conflict(error) from None


@router.post("/{plan_id}/versions", operation_id="save_hand_edit", status_code=status.HTTP_201_CREATED,
             summary="Save a hand edit (routes in a fixed order) as a draft version", response_model=DraftOut,
             responses=RESPONSES)
def save_hand_edit(plan_id: str, body: HandEditIn, settings: SettingsDep, store: StoreDep, networks: NetworksDep,
                   principal: DispatcherDep) -> DraftOut:
    """`plan_id` is the current version or the draft (which the edit replaces). The routes are
    scheduled and checked by the evaluator (plan mode, as `POST /v1/evaluate`); a version that
    breaks rules is stored with its `violations` and can be published only with
    `accept_violations`. A visit in no route is left out, with its reason. A door a crew has
    recorded cannot move to another vehicle (422)."""
    steps = sum(len(route) for route in body.routes.values())
    if steps > settings.max_evaluate_steps:
        raise ProblemError(f"{steps} steps is more than this server evaluates at once "
                                    f"({settings.max_evaluate_steps})", path=("routes",))
    base = plan_of(store, plan_id, principal, document=True, request=True)
    try:
        row, _ = drafts.hand_edit(store, networks, _chain(store, base), base, body.routes, actor=principal.actor,
                                  check_ids=_check_ids)
    except drafts.DraftConflict as error:
        raise _conflict(error) from None
    return _out(row)
