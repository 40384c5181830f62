"""``POST /vroom`` (VROOM's own path, so a client given this server's base URL works) and
``POST /v1/vroom``: VROOM's JSON in, VROOM's JSON out, solved by Doorstep's portfolio.

Synchronous, as VROOM clients expect: the solve is queued like any plan (it is one, listed in
``/v1/plans`` as "VROOM request") and runs in the worker processes; the request waits on the
event loop (:mod:`service.waits`), holding no thread, for the time limit plus a margin, capped
by ``DOORSTEP_MAX_WAIT_S``. Past that the solve is cancelled and its best plan so far answered.
Plan mode (``options.c`` or vehicles' ``steps``) is the evaluator's, in the thread pool, bounded
like ``POST /v1/evaluate``. Errors are VROOM's: ``{"code": 2, "error": ...}`` with 400 for input
(413 when too large), 500 for routing (3) and internal (1) errors. The mapping is
:mod:`service.vroom_wire`'s and :mod:`service.vroom_output`'s.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from routing.errors import NetworkError, ProblemError
from routing.evaluate import evaluate
from routing.plan import Plan
from service.api.deps import AUTH, NetworksDep, ReaderDep, RunnerDep, SettingsDep, StoreDep, WaiterDep
from service.auth import Principal
from service.config import Settings
from service.jobs import JobRunner
from service.networks import NetworkRegistry
from service.pipeline import document_of, prepare
from service.planning import check_request, stored_request, wait_budget
from service.schemas import PlanRequest, Status, dump_document
from service.store import PlanRow, Store
from service.vroom_output import plan_mode_unassigned, to_output
from service.vroom_wire import INPUT, INTERNAL, ROUTING, VroomError, Wire, parse, to_request

log = logging.getLogger(__name__)
router = APIRouter(tags=["VROOM-compatible"])

CANCEL_GRACE_S = 5.0
"""After a cancel, how long the best plan so far takes to be stored (workers stop within a second)."""

_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "VROOM's input: jobs, vehicles, optional matrices, options.g / options.c.",
        "example": {"vehicles": [{"id": 1, "start": [24.9414, 60.1710], "end": [24.9414, 60.1710]}],
                    "jobs": [{"id": 1, "location": [24.9355, 60.1699], "service": 300},
                             {"id": 2, "location": [24.9450, 60.1675], "service": 300}]}}}}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "VROOM's output (`code` 0), with Doorstep's `reason` on each unassigned job."},
    400: {"description": "Input error (code 2), naming the field or the unsupported key.",
          "content": {"application/json": {"example": {"code": 2, "error": "shipments is not supported: ..."}}}},
    413: {"description": "Too many jobs or vehicles for this server (code 2)."},
    500: {"description": "Routing (code 3) or internal (code 1) error."},
    **AUTH,
}


def _error(error: VroomError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """A Doorstep request field as the VROOM input field it came from."""
    names = {"visits": "jobs", "vehicles": "vehicles", "depots": "vehicles' start or end"}
    parts = [p for p in loc if p != "body"]
    if not parts:
        return "input"
    out = names.get(str(parts[0]), str(parts[0]))
    for part in parts[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _input_error(loc: tuple[Any, ...] | list[Any], message: str) -> VroomError:
    return VroomError(INPUT, f"{_field(loc)}: {message}")


def _validated(document: dict[str, Any]) -> PlanRequest:
    try:
        return PlanRequest.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        raise _input_error(first["loc"], first["msg"]) from None


def _drawable(document: dict[str, Any], networks: NetworkRegistry, settings: Settings) -> bool:
    """Whether the network a request with matrices names (to draw ``options.g``'s geometry) covers
    every place: a line drawn from far outside it would be nonsense."""
    name = document.get("network")
    if name is None:
        return False
    places = [site["location"] for kind in ("depots", "visits") for site in document[kind]]
    for profile in {v["profile"] for v in document["vehicles"]}:
        network = networks.get(name, profile)
        if not all(network.contains(place, margin_m=settings.max_snap_m) for place in places):
            return False
    return True


def _queue(document: dict[str, Any], settings: Settings, store: Store, runner: JobRunner,
           networks: NetworkRegistry, principal: Principal) -> tuple[PlanRow, float]:
    if "matrices" in document and "network" in document and not _drawable(document, networks, settings):
        del document["network"]
    request = _validated(document)
    try:
        limit = check_request(request, settings, networks)
    except ProblemError as error:
        raise _input_error(error.path, str(error)) from None
    except NetworkError as error:
        raise VroomError(ROUTING, f"road network unavailable: {error}") from None
    row = store.create(stored_request(request), name=request.name, time_limit_s=limit, visits=len(request.visits),
                       vehicles=len(request.vehicles), organisation=principal.organisation)
    runner.submit(row.id)
    return row, limit


def _cancel(store: Store, runner: JobRunner, plan_id: str) -> None:
    store.request_cancel(plan_id)
    runner.cancel(plan_id)


def _answer(row: PlanRow | None, wire: Wire, loading_ms: int, solving_ms: int) -> dict[str, Any]:
    if row is None or row.error is not None:
        error = (row.error if row else None) or {}
        if error.get("type") == "input_error":
            raise _input_error(error.get("loc") or [], str(error.get("msg")))
        if error.get("type") == "network_error":
            raise VroomError(ROUTING, str(error.get("msg")))
        raise VroomError(INTERNAL, str(error.get("msg") or "the solve failed"))
    if row.document is None:
        raise VroomError(INTERNAL, f"no plan was found in time (plan {row.id} is {row.status.value})")
    times = {"loading": loading_ms, "solving": solving_ms, "routing": 0}
    return to_output(row.document, wire, times)


def _plan_mode(document: dict[str, Any], wire: Wire, settings: Settings, networks: NetworkRegistry,
               started: float) -> dict[str, Any]:
    """Plan mode: the given order of each vehicle, scheduled and checked by the evaluator."""
    steps = sum(len(route) for route in wire.routes.values())
    if steps > settings.max_evaluate_steps:
        raise VroomError(INPUT, f"{steps} steps is more than this server evaluates at once "
                                f"({settings.max_evaluate_steps})", status=413)
    request = _validated(document)
    try:
        check_request(request, settings, networks)
        prepared = prepare(request, networks)
    except ProblemError as error:
        raise _input_error(error.path, str(error)) from None
    except NetworkError as error:
        raise VroomError(ROUTING, f"road network unavailable: {error}") from None
    loaded = time.monotonic()
    evaluation = evaluate(prepared.problem, wire.routes)
    plan = Plan(routes=evaluation.routes, unassigned=(), violations=evaluation.violations, cost=evaluation.cost,
                engine="evaluate")
    drawn = prepared if wire.geometry else dataclasses.replace(prepared, geometry=None)
    out = dump_document(document_of(drawn, plan))
    out["unassigned"] = [{"visit_id": ident, "reason": "not_in_steps", "detail": "in no vehicle's steps"}
                         for ident in plan_mode_unassigned(wire)]
    times = {"loading": round((loaded - started) * 1000), "solving": round((time.monotonic() - loaded) * 1000),
             "routing": 0}
    return to_output(out, wire, times)


async def _solve(request: Request, settings: Settings, store: Store, runner: JobRunner, networks: NetworkRegistry,
                 waiter: Any, principal: Principal) -> JSONResponse:
    started = time.monotonic()
    try:
        try:
            raw = json.loads(await request.body())
        except ValueError:
            raise VroomError(INPUT, "the body is not JSON") from None
        vroom = parse(raw)
        if len(vroom.jobs) > settings.max_visits or len(vroom.vehicles) > settings.max_vehicles:
            raise VroomError(INPUT, f"{len(vroom.jobs)} jobs and {len(vroom.vehicles)} vehicles: this server plans at "
                                    f"most {settings.max_visits} and {settings.max_vehicles} at once", status=413)
        document, wire = to_request(vroom, default_network=settings.default_network)
        if wire.plan_mode:
            return JSONResponse(await run_in_threadpool(_plan_mode, document, wire, settings, networks, started))
        row, limit = await run_in_threadpool(_queue, document, settings, store, runner, networks, principal)
        queued = time.monotonic()
        if not await waiter.wait(row.id, wait_budget(limit, settings)):
            log.warning("VROOM request %s: no answer within the wait; cancelling for the best plan so far", row.id)
            await run_in_threadpool(_cancel, store, runner, row.id)
            await waiter.wait(row.id, CANCEL_GRACE_S)
        final = await run_in_threadpool(lambda: store.get(row.id, document=True))
        if final is not None and final.status is Status.FAILED and final.error is None:
            final = None
        output = _answer(final, wire, round((queued - started) * 1000), round((time.monotonic() - queued) * 1000))
        return JSONResponse(output)
    except VroomError as error:
        return _error(error)


@router.post("/vroom", operation_id="vroom_solve", summary="Solve VROOM's JSON (VROOM's own path)",
             openapi_extra=_OPENAPI, responses=_RESPONSES)
async def vroom_solve(request: Request, settings: SettingsDep, store: StoreDep, runner: RunnerDep,
                      networks: NetworksDep, waiter: WaiterDep, principal: ReaderDep) -> JSONResponse:
    """VROOM's input (`jobs`, `vehicles`, `matrices`, `options`) in, VROOM's output out; see the README's
    table of what maps to what. Without `matrices`, locations are routed on the server's road network."""
    return await _solve(request, settings, store, runner, networks, waiter, principal)


@router.post("/v1/vroom", operation_id="vroom_solve_v1", summary="Solve VROOM's JSON",
             openapi_extra=_OPENAPI, responses=_RESPONSES)
async def vroom_solve_v1(request: Request, settings: SettingsDep, store: StoreDep, runner: RunnerDep,
                         networks: NetworksDep, waiter: WaiterDep, principal: ReaderDep) -> JSONResponse:
    """The same as `POST /vroom`, under the API's version prefix."""
    return await _solve(request, settings, store, runner, networks, waiter, principal)
