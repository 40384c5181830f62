"""``/v1/plans``: submit a problem, follow its solve, read, cancel and export the plan.

Endpoints are plain ``def``: FastAPI runs them in its thread pool, so the checks that touch a
road network (area, snapping) never block the event loop. ``POST`` is ``async`` for its
``?wait=true``: the checks go to the thread pool, the wait stays on the event loop
(:mod:`service.waits`), so waiting requests hold no thread. Solves themselves run in worker
processes (:mod:`service.jobs`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import exports
from service.api.deps import (
    AUTH,
    DispatcherDep,
    NetworksDep,
    PlanReadsDep,
    PrincipalDep,
    ReaderDep,
    Responses,
    RunnerDep,
    SettingsDep,
    StoreDep,
    WaiterDep,
    check_vehicle,
    head_of,
    plan_of,
    read_now,
)
from service.api.errors import unprocessable
from service.api.links import plan_links
from service.auth import Principal
from service.callbacks import check_callback_url, subscribe
from service.config import Settings
from service.jobs import JobRunner
from service.networks import NetworkRegistry
from service.plan_reads import PlanReads
from service.planning import check_request, plan_out, plan_summary_out, plan_url, stored_request, wait_budget
from service.privacy import redact_document, redact_route
from service.schemas import (
    EXAMPLE_REQUEST,
    PlanCreated,
    PlanDocument,
    PlanList,
    PlanOut,
    PlanRequest,
    RouteDetail,
    RouteOut,
    Status,
)
from service.store import PlanHead, PlanRow, Store

router = APIRouter(prefix="/v1/plans", tags=["plans"])

MAX_OFFSET = 1_000_000_000
"""Beyond any real history, and within every database's integer (10**30 made SQLite raise)."""

NOT_FOUND: Responses = {404: {"description": "No plan (or no route) with this id.", "content": {
    "application/json": {"example": {"detail": 'no plan "5f0c6b8e..."'}}}}}
NOT_READY: Responses = {409: {"description": "The plan has no routes yet (queued or solving), or failed.", "content": {
    "application/json": {"example": {"detail": "plan 5f0c6b8e... is solving: its routes are ready when it is done"}}}}}
INVALID: Responses = {422: {"description": "Bad input: every error names its field.", "content": {"application/json": {
    "example": {"detail": [{"loc": ["body", "visits", 3, "time_windows", 0],
                            "msg": 'Visit "v-4": time window: time window ends (09:00) before it starts (11:00)',
                            "type": "ProblemError"}]}}}}}
TOO_LARGE: Responses = {413: {"description": "The request body is over the server's size limit."}}

_EXAMPLES = {
    "network": {"summary": "Two home visits routed on the Helsinki road network", "value": EXAMPLE_REQUEST},
    "matrices": {
        "summary": "Caller-supplied matrices (depots, then visits)",
        "value": {
            "matrices": {
                "drive": {
                    "durations_s": [[0, 300, 420], [310, 0, 240], [400, 250, 0]],
                    "distances_m": [[0, 2500, 3600], [2550, 0, 1900], [3500, 2000, 0]],
                }
            },
            "depots": [{"id": "station", "location": [113.62, 34.75]}],
            "vehicles": [{"id": "bus-1", "kind": "bus", "start_depot": "station",
                          "shift": {"start": "08:00", "end": "29:00"}, "capacity": {"tubes": 200}}],
            "visits": [
                {"id": "plaza", "location": [113.63, 34.76], "people": 120, "setup_s": 600, "per_person_s": 20},
                {"id": "school", "location": [113.64, 34.75], "people": 300, "per_person_s": 15,
                 "time_windows": [{"start": "12:00", "end": "14:00"}]},
            ],
            "options": {"time_limit_s": 2},
        },
    },
}


def _get(store: Store, plan_id: str, principal: Principal) -> PlanRow:
    return plan_of(store, plan_id, principal)


def _shown(reads: PlanReads, store: Store, row: PlanRow, principal: Principal) -> PlanOut:
    """The plan as ``principal`` may see it (personal data only if allowed)."""
    return plan_out(row, redact_document(reads.document(store, row), principal))


def _shown_json(reads: PlanReads, store: Store, row: PlanRow | PlanHead, principal: Principal) -> bytes:
    """:func:`_shown`, serialised, kept while the plan is unchanged. Given only the plan's head,
    the full row is read when the answer has to be built."""

    def build() -> bytes:
        full = row if isinstance(row, PlanRow) else store.get(row.id)
        if full is None:  # deleted since its head was read
            raise HTTPException(status.HTTP_404_NOT_FOUND, f'no plan "{row.id}"')
        return _shown(reads, store, full, principal).model_dump_json().encode()

    return reads.answer(row, principal.sees_personal_data(), build)


def _document(reads: PlanReads, store: Store, plan_id: str, principal: Principal) -> tuple[PlanRow, PlanDocument]:
    row = _get(store, plan_id, principal)
    document = reads.document(store, row)
    if document is None:
        if row.status in (Status.QUEUED, Status.SOLVING):
            detail = f"plan {plan_id} is {row.status.value}: its routes are ready when it is done"
        else:
            detail = f"plan {plan_id} is {row.status.value} and has no routes"
        raise HTTPException(status.HTTP_409_CONFLICT, detail)
    return row, document


def _route(reads: PlanReads, store: Store, plan_id: str, vehicle_id: str,
           principal: Principal) -> tuple[PlanDocument, RouteOut]:
    """The document (with only this route) and the route, as ``principal`` may see them."""
    check_vehicle(principal, vehicle_id)
    _, document = _document(reads, store, plan_id, principal)
    route = document.route(vehicle_id)
    if route is not None:
        route = redact_route(route, principal)
        return document.model_copy(update={"routes": [route]}), route
    # The request only for this message: it holds the travel matrices (megabytes of JSON for a
    # large day), which every crew's read used to parse.
    stored = store.get(plan_id, request=True)
    vehicles = [v.get("id") for v in ((stored.request if stored else None) or {}).get("vehicles", [])]
    if vehicle_id in vehicles:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'vehicle "{vehicle_id}" has no visits in plan {plan_id}')
    raise HTTPException(
        status.HTTP_404_NOT_FOUND, f'plan {plan_id} has no vehicle "{vehicle_id}" (vehicles: {", ".join(vehicles)})'
    )


@router.post(
    "",
    operation_id="create_plan",
    summary="Submit a problem to plan",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PlanCreated,
    responses={
        200: {"model": PlanOut, "description": "With `?wait=true`: the solve finished in time.",
              "links": plan_links(with_routes=True)},
        202: {"links": plan_links(with_routes=True)},
        **INVALID,
        **TOO_LARGE,
        **AUTH,
        503: {"description": "The road network cannot be loaded."},
    },
)
async def create_plan(
    request: Annotated[PlanRequest, Body(openapi_examples=_EXAMPLES)],
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    runner: RunnerDep,
    networks: NetworksDep,
    waiter: WaiterDep,
    reads: PlanReadsDep,
    principal: ReaderDep,
    wait: Annotated[
        bool,
        Query(description="Answer when the solve is done (at most the time limit plus a margin, capped by the "
              "server's DOORSTEP_MAX_WAIT_S), for small problems; else 202 as without it."),
    ] = False,
) -> Any:
    """Queue a solve of `request`; answer `202` with the plan's id and URL to poll.

    Input is checked first (sizes, references, windows, locations inside the network and near a
    road): bad input answers `422` naming the field. A visit no vehicle can serve is not bad
    input: it is listed in the plan's `unassigned` with a reason.
    """
    # The checks touch road networks (snapping): a thread's work. The wait is the event loop's.
    row = await run_in_threadpool(_queue, request, settings, store, runner, networks, principal)
    url = plan_url(row.id)
    if wait and await waiter.wait(row.id, wait_budget(row.time_limit_s, settings)):
        return await run_in_threadpool(_finished, reads, store, row.id, principal, url)
    response.headers["Location"] = url
    return PlanCreated(id=row.id, status=Status.QUEUED, url=url)


def _queue(request: PlanRequest, settings: Settings, store: Store, runner: JobRunner, networks: NetworkRegistry,
           principal: Principal) -> PlanRow:
    limit = check_request(request, settings, networks)
    check_callback_url(request.callback_url, settings)
    row = store.create(
        stored_request(request),
        name=request.name,
        time_limit_s=limit,
        visits=len(request.visits),
        vehicles=len(request.vehicles),
        organisation=principal.organisation,
    )
    subscribe(store, row.id, principal.organisation, request.callback_url)
    runner.submit(row.id)
    return row


def _finished(reads: PlanReads, store: Store, plan_id: str, principal: Principal, url: str) -> Response:
    """The answer to a wait that saw the plan finish: the plan, or 422 if the worker found bad input."""
    current = store.get(plan_id)
    assert current is not None
    if current.error and current.error.get("type") == "input_error":
        return unprocessable(current.error.get("loc") or ["body"], current.error["msg"])
    return Response(_shown_json(reads, store, current, principal), status_code=200, headers={"Location": url},
                    media_type="application/json")


@router.get("", operation_id="list_plans", summary="List plans, newest first", response_model=PlanList,
            responses=AUTH)
def list_plans(
    store: StoreDep,
    principal: ReaderDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status_: Annotated[Status | None, Query(alias="status", description="Only plans in this status.")] = None,
) -> PlanList:
    rows, count = store.page(offset=offset, limit=limit, status=status_, organisation=principal.organisation)
    return PlanList(data=[plan_summary_out(r) for r in rows], count=count, offset=offset, limit=limit)


@router.get(
    "/{plan_id}.geojson",
    operation_id="export_plan_geojson",
    summary="The plan as GeoJSON (routes and stops)",
    response_class=JSONResponse,
    responses={200: {"content": {"application/geo+json": {"example": {"type": "FeatureCollection", "features": []}}}},
               **NOT_FOUND, **NOT_READY, **AUTH},
)
def export_plan_geojson(plan_id: str, store: StoreDep, reads: PlanReadsDep, principal: ReaderDep) -> JSONResponse:
    _, document = _document(reads, store, plan_id, principal)
    return JSONResponse(exports.plan_geojson(redact_document(document, principal) or document),
                        media_type="application/geo+json")


@router.get(
    "/{plan_id}",
    operation_id="get_plan",
    summary="A plan: status, progress while solving, routes when done",
    response_model=PlanOut,
    responses={**NOT_FOUND, **AUTH},
)
async def get_plan(plan_id: str, store: StoreDep, reads: PlanReadsDep, principal: ReaderDep) -> Response:
    return await read_now(store, principal, _plan_response, reads, store, plan_id, principal)


def _plan_response(reads: PlanReads, store: Store, plan_id: str, principal: Principal) -> Response:
    # Serialised here, once: returned as a model, FastAPI would check it against PlanOut again and
    # serialise it through its own adapter, which cost more than reading the plan.
    body = _shown_json(reads, store, head_of(store, plan_id, principal), principal)
    return Response(body, media_type="application/json")


@router.delete(
    "/{plan_id}",
    operation_id="cancel_plan",
    summary="Cancel a queued or running solve (the best plan so far is kept)",
    response_model=PlanOut,
    responses={**NOT_FOUND, 409: {"description": "The solve has already finished.", "content": {
        "application/json": {"example": {"detail": "plan 5f0c6b8e... is already done: nothing to cancel"}}}},
        **AUTH},
)
def cancel_plan(plan_id: str, store: StoreDep, reads: PlanReadsDep, runner: RunnerDep,
                principal: DispatcherDep) -> PlanOut:
    """A queued plan is cancelled at once. A solving one stops within about a second and keeps
    the best plan found so far (`status` becomes `cancelled`; poll for it)."""
    row = _get(store, plan_id, principal)
    if row.status.is_final:
        detail = f"plan {plan_id} is already {row.status.value}: nothing to cancel"
        raise HTTPException(status.HTTP_409_CONFLICT, detail)
    store.request_cancel(plan_id)
    runner.cancel(plan_id)
    return _shown(reads, store, _get(store, plan_id, principal), principal)


_ROUTE_RESPONSES: Responses = {**NOT_FOUND, **NOT_READY, **AUTH}

_EXPORTS: dict[str, tuple[Callable[[PlanDocument, str], str], str]] = {
    "csv": (exports.route_csv, "text/csv; charset=utf-8"),
    "gpx": (exports.route_gpx, "application/gpx+xml"),
    "html": (exports.route_html, "text/html; charset=utf-8"),
}


def _route_export(reads: PlanReads, store: Store, plan_id: str, vehicle_id: str, principal: Principal,
                  kind: str) -> Response:
    """One crew's route as a file (kept while the plan is unchanged: phones download it again and again)."""
    check_vehicle(principal, vehicle_id)
    head = head_of(store, plan_id, principal)
    render, media_type = _EXPORTS[kind]

    def build() -> bytes:
        document, _ = _route(reads, store, plan_id, vehicle_id, principal)
        return render(document, vehicle_id).encode()

    body = reads.answer(head, (kind, vehicle_id, principal.sees_personal_data(vehicle_id)), build)
    # The printable page opens in the browser; the others are saved as <vehicle>.<kind>.
    headers = {} if kind == "html" else {"Content-Disposition": content_disposition(vehicle_id, kind)}
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/{plan_id}/routes/{vehicle_id}.csv",
    operation_id="export_route_csv",
    summary="One crew's stop list as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"example": "seq,kind,id,arrival,...\n1,visit,v-1,09:00,...\n"}}},
               **_ROUTE_RESPONSES},
)
async def export_route_csv(plan_id: str, vehicle_id: str, store: StoreDep, reads: PlanReadsDep,
                            principal: PrincipalDep) -> Response:
    return await read_now(store, principal, _route_export, reads, store, plan_id, vehicle_id, principal, "csv")



@router.get(
    "/{plan_id}/routes/{vehicle_id}.gpx",
    operation_id="export_route_gpx",
    summary="One crew's route as GPX (for navigation apps)",
    response_class=Response,
    responses={200: {"content": {"application/gpx+xml": {"example": '<gpx version="1.1">...</gpx>'}}},
               **_ROUTE_RESPONSES},
)
async def export_route_gpx(plan_id: str, vehicle_id: str, store: StoreDep, reads: PlanReadsDep,
                            principal: PrincipalDep) -> Response:
    return await read_now(store, principal, _route_export, reads, store, plan_id, vehicle_id, principal, "gpx")



@router.get(
    "/{plan_id}/routes/{vehicle_id}.html",
    operation_id="export_route_html",
    summary="One crew's printable stop list",
    response_class=Response,
    responses={200: {"content": {"text/html": {"example": "<!doctype html>..."}}}, **_ROUTE_RESPONSES},
)
async def export_route_html(plan_id: str, vehicle_id: str, store: StoreDep, reads: PlanReadsDep,
                            principal: PrincipalDep) -> Response:
    return await read_now(store, principal, _route_export, reads, store, plan_id, vehicle_id, principal, "html")



@router.get(
    "/{plan_id}/routes/{vehicle_id}",
    operation_id="get_route",
    summary="One crew's ordered stop list",
    response_model=RouteDetail,
    responses=_ROUTE_RESPONSES,
)
async def get_route(plan_id: str, vehicle_id: str, store: StoreDep, reads: PlanReadsDep,
                    principal: PrincipalDep) -> RouteDetail:
    """Crews: only their own vehicle's (403 for any other). A route of a plan that has been
    re-planned says which version replaced it (``superseded_by``): the crew loads that one."""
    return await read_now(store, principal, _route_detail, reads, store, plan_id, vehicle_id, principal)


def _route_detail(reads: PlanReads, store: Store, plan_id: str, vehicle_id: str, principal: Principal) -> RouteDetail:
    _, route = _route(reads, store, plan_id, vehicle_id, principal)
    row = store.get(plan_id)
    live = [v for v in store.versions(row.root) if v.publication == "published"] if row is not None else []
    newest = live[-1].id if live else plan_id
    superseded_by = None if newest == plan_id else newest
    return RouteDetail.model_validate({"plan_id": plan_id, **dict(route), "superseded_by": superseded_by})


def content_disposition(vehicle_id: str, extension: str) -> str:
    """``attachment`` named after the vehicle, in any script.

    HTTP headers are Latin-1, so a name like ``车队-1`` goes in RFC 6266's ``filename*`` (UTF-8,
    percent-encoded, RFC 5987), which every current browser prefers; ``filename`` keeps an ASCII
    fallback for the clients that do not read it.
    """
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in vehicle_id) or "route"
    fallback = "".join(c if c.isascii() else "_" for c in name)
    if fallback.strip("_") == "":
        fallback = "route"
    encoded = urllib.parse.quote(f"{name}.{extension}", safe="")
    return f"attachment; filename=\"{fallback}.{extension}\"; filename*=UTF-8''{encoded}"
