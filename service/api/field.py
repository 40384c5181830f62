"""Field operations on a plan: record outcomes (the ledger), follow progress, re-plan the rest of
the day, list and compare versions, carry what is left over to tomorrow.

Plain ``def`` endpoints (thread pool): re-planning may compute travel matrices on a road network.
The re-plan route is ``async`` for its ``?wait=true`` only: its work goes to the thread pool, the
wait stays on the event loop (:mod:`service.waits`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from routing.errors import ProblemError
from service.api import deps
from service.api.deps import (
    CrewOrDispatcherDep,
    DispatcherDep,
    NetworksDep,
    ReaderDep,
    Responses,
    RunnerDep,
    SettingsDep,
    StoreDep,
    WaiterDep,
    check_vehicle,
    plan_of,
)
from service.api.links import REPLAN_LINKS
from service.auth import Principal, Role
from service.callbacks import check_callback_url, subscribe
from service.config import Settings
from service.field import Chain, VersionConflict, carry_over, compare, load_chain, progress
from service.field import replan as replan_version
from service.field.schemas import (
    CarryOverOut,
    CompareOut,
    EventIn,
    EventList,
    EventOut,
    PlanProgressOut,
    ReplanIn,
    ReplanOut,
    VersionList,
    VersionOut,
)
from service.jobs import JobRunner
from service.ledger import Event, IdempotencyConflict, Ledger
from service.networks import NetworkRegistry
from service.planning import plan_url, wait_budget
from service.privacy import redact_payload, redact_request
from service.schemas import TimeOfDay
from service.store import PlanRow, Store

router = APIRouter(prefix="/v1/plans", tags=["field operations"])

AUTH: Responses = {**deps.AUTH, 404: {"description": "No plan with this id (in your organisation)."}}

AtQuery = Annotated[
    TimeOfDay | None,
    Query(description="Time of the plan's day to measure lateness at; default: the server's local time now."),
]


def now_s() -> int:
    now = datetime.now().astimezone()
    return now.hour * 3600 + now.minute * 60 + now.second


def _chain(store: Store, row: PlanRow) -> Chain:
    return load_chain(store, row, Ledger(store).events(row.root))


def _event_out(event: Event, principal: Principal) -> EventOut:
    return EventOut(
        id=event.id, plan_id=event.plan_id, version_id=event.version_id, vehicle_id=event.vehicle_id,
        step_id=event.step_id, outcome=event.outcome,
        payload=redact_payload(event.payload, principal, event.vehicle_id), actor=event.actor,
        recorded_at=event.recorded_at, idempotency_key=event.idempotency_key,
    )


# -- ledger ------------------------------------------------------------------------------------------


@router.post(
    "/{plan_id}/events",
    operation_id="record_event",
    summary="Record a step's outcome (crews: their own vehicle's steps)",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses={200: {"description": "Already recorded with this idempotency key: the first entry."},
               409: {"description": "The idempotency key was used for another entry."}, **AUTH},
)
def record_event(
    plan_id: str,
    event: EventIn,
    response: Response,
    store: StoreDep,
    principal: CrewOrDispatcherDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> EventOut:
    """Append `event` to the plan's ledger. Nothing is overwritten: a later outcome for the same
    step supersedes the earlier one in the progress, and both stay in the history."""
    row = plan_of(store, plan_id, principal)
    check_vehicle(principal, event.vehicle_id)
    chain = _chain(store, row)
    tasks = chain.tasks()
    if event.step_id not in tasks:
        raise ProblemError(f'"{event.step_id}" is not a visit or bus stop of plan {plan_id}', path=("step_id",))
    if event.vehicle_id not in chain.vehicle_ids():
        raise ProblemError(f'"{event.vehicle_id}" is not a vehicle of plan {plan_id}', path=("vehicle_id",))
    if principal.role is Role.CREW:
        routes = (chain.document(v) for v in chain.live)
        own = {s.id for doc in routes if doc is not None and (r := doc.route(event.vehicle_id)) for s in r.steps}
        if event.step_id not in own:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f'"{event.step_id}" is not on the route of vehicle "{event.vehicle_id}"')
    key = idempotency_key or event.idempotency_key
    payload = {
        "at_s": event.at,
        "arrival_s": event.arrival,
        "departure_s": event.departure,
        "people_sampled": event.people_sampled,
        "tubes_used": event.tubes_used,
        "note": event.note,
    }
    version = chain.current_id or row.id
    try:
        recorded, created = Ledger(store).record(
            row.root, version, outcome=event.outcome.value, payload=payload, actor=principal.actor,
            vehicle_id=event.vehicle_id, step_id=event.step_id, idempotency_key=key,
        )
    except IdempotencyConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return _event_out(recorded, principal)


@router.get("/{plan_id}/events", operation_id="list_events", summary="The plan's ledger, oldest first",
            response_model=EventList, responses=AUTH)
def list_events(plan_id: str, store: StoreDep, principal: ReaderDep) -> EventList:
    row = plan_of(store, plan_id, principal)
    events = Ledger(store).events(row.root)
    return EventList(data=[_event_out(e, principal) for e in events], count=len(events))


@router.get("/{plan_id}/progress", operation_id="get_progress", summary="Progress of the day",
            response_model=PlanProgressOut, responses=AUTH)
def get_progress(plan_id: str, store: StoreDep, principal: ReaderDep, at: AtQuery = None) -> PlanProgressOut:
    """Per vehicle: done, remaining, late and how far behind; people sampled against expected;
    every resident not sampled yet with their last outcome (notes and contacts only if allowed)."""
    row = plan_of(store, plan_id, principal)
    out = progress(_chain(store, row), now_s() if at is None else at)
    if not principal.sees_personal_data():
        for item in out["not_sampled"]:
            item["notes"] = item["contact"] = None
    return PlanProgressOut.model_validate(out)


# -- re-planning -------------------------------------------------------------------------------------


@router.post(
    "/{plan_id}/replan",
    operation_id="replan",
    summary="Re-plan the rest of the day: a new version",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplanOut,
    responses={200: {"model": ReplanOut, "description": "With `?wait=true`: the new version is solved.",
                     "links": REPLAN_LINKS}, 202: {"links": REPLAN_LINKS},
               409: {"description": "Not the newest version, or it has no routes yet."},
               422: {"description": "Bad input, naming the field."}, **AUTH},
)
async def replan(
    plan_id: str,
    body: ReplanIn,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    networks: NetworksDep,
    waiter: WaiterDep,
    principal: DispatcherDep,
    wait: Annotated[bool, Query(description="Answer when the new version is solved (as POST /v1/plans).")] = False,
) -> Any:
    """Completed and in-progress steps stay fixed; each team starts where it is; visits keep
    their team unless moving one saves more than `reassignment_cost`; `not_home` visits are
    retried later if asked. The new version is queued like any plan (poll its `url`)."""
    # Re-planning may compute travel matrices: a thread's work. The wait is the event loop's
    # (service.waits), so a waiting request holds no thread.
    out, limit = await run_in_threadpool(_queue_replan, plan_id, body, settings, store, runner, networks, principal)
    response.headers["Location"] = out.url
    if wait and await waiter.wait(out.id, wait_budget(limit, settings)):
        current_row = await run_in_threadpool(store.get, out.id)
        assert current_row is not None
        out.status = current_row.status.value
        return JSONResponse(out.model_dump(mode="json"), status_code=200, headers={"Location": out.url})
    return out


def _queue_replan(plan_id: str, body: ReplanIn, settings: Settings, store: Store, runner: JobRunner,
                  networks: NetworkRegistry, principal: Principal) -> tuple[ReplanOut, float]:
    row = plan_of(store, plan_id, principal)
    check_callback_url(body.callback_url, settings)  # before anything is stored
    try:
        out, limit = replan_version(store, row, body, settings, networks, principal)
    except VersionConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    subscribe(store, out.id, row.organisation, body.callback_url)
    runner.submit(out.id)
    return out, limit


@router.get("/{plan_id}/versions", operation_id="list_versions", summary="Every version of the plan",
            response_model=VersionList, responses=AUTH)
def list_versions(plan_id: str, store: StoreDep, principal: ReaderDep) -> VersionList:
    row = plan_of(store, plan_id, principal)
    versions = store.versions(row.root)
    return VersionList(
        data=[VersionOut(id=v.id, version=v.version, parent_id=v.parent_id, status=v.status.value,
                         url=plan_url(v.id), created_at=v.created_at, summary=v.summary,
                         publication=v.publication) for v in versions],
        count=len(versions),
    )


@router.get("/{plan_id}/compare/{other_id}", operation_id="compare_versions",
            summary="What changed between two versions", response_model=CompareOut, responses=AUTH)
def compare_versions(plan_id: str, other_id: str, store: StoreDep, principal: ReaderDep) -> CompareOut:
    """Visits moved to another vehicle, added, removed (with their outcome), and ETAs that moved
    by a minute or more, from `plan_id` to `other_id`."""
    a = plan_of(store, plan_id, principal, document=True)
    b = plan_of(store, other_id, principal, document=True)
    if a.root != b.root:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"plans {plan_id} and {other_id} are not versions of one plan")
    for version in (a, b):
        if version.document is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"plan {version.id} is {version.status.value}: no routes")
    states = _chain(store, a).states
    return CompareOut.model_validate(compare(a, b, states))


@router.get("/{plan_id}/carry-over", operation_id="carry_over",
            summary="What was not sampled today, as tomorrow's request with its history",
            response_model=CarryOverOut, responses=AUTH)
def get_carry_over(plan_id: str, store: StoreDep, principal: ReaderDep) -> CarryOverOut:
    row = plan_of(store, plan_id, principal)
    out = carry_over(_chain(store, row))
    out["request"] = redact_request(out["request"], principal)
    if not principal.sees_personal_data():
        for entries in out["history"].values():
            for entry in entries:
                entry["note"] = None
    return CarryOverOut.model_validate(out)

