"""``/v1/rounds``: a city round, one plan per district solved in parallel and joined (:mod:`service.rounds`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from routing.errors import ProblemError
from service.api.deps import AUTH, DispatcherDep, NetworksDep, ReaderDep, SettingsDep, StoreDep
from service.auth import Principal
from service.config import Settings
from service.networks import NetworkRegistry
from service.planning import check_request
from service.privacy import redact_route
from service.rounds import RoundRecord, Rounds, split_round
from service.schemas import PlanRequest, RouteOut, Status
from service.store import Store

router = APIRouter(prefix="/v1/rounds", tags=["rounds"])


def get_rounds(request: Request) -> Rounds:
    rounds: Rounds = request.app.state.rounds
    return rounds


def round_url(round_id: str) -> str:
    return f"/v1/rounds/{round_id}"


@router.post("", status_code=status.HTTP_202_ACCEPTED, operation_id="create_round", responses={**AUTH})
async def create_round(body: PlanRequest, request: Request, response: Response, settings: SettingsDep,
                       networks: NetworksDep, principal: ReaderDep) -> dict[str, Any]:
    """Queue a city round: the request's items carry a `district` (or go with their nearest
    depot's); each district is solved as its own plan, in parallel, then the visits a district
    left out are offered to its nearest neighbour, and the plans are joined. Each district is
    checked as a plan request would be (`422` names the field)."""
    rounds = get_rounds(request)
    round_id = await run_in_threadpool(_create, body, settings, networks, rounds, principal)
    response.headers["Location"] = round_url(round_id)
    return {"id": round_id, "status": "solving", "url": round_url(round_id)}


def _create(body: PlanRequest, settings: Settings, networks: NetworkRegistry, rounds: Rounds,
            principal: Principal) -> str:
    limit = settings.default_time_limit_s
    for part in split_round(body).values():
        if part is not None:
            try:
                limit = check_request(part, settings, networks)
            except ProblemError as error:
                raise in_round(error, part, body) from None
    return rounds.create(body, organisation=principal.organisation, time_limit_s=limit)


def in_round(error: ProblemError, part: PlanRequest, body: PlanRequest) -> ProblemError:
    """A district's error re-pointed at the round's field (``visits.3`` of a district is another
    index of the round's ``visits``)."""
    path = error.path
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
        items = getattr(part, path[0], None)
        if isinstance(items, list) and path[1] < len(items):
            ids = [item.id for item in getattr(body, path[0])]
            if items[path[1]].id in ids:
                return type(error)(str(error), path=(path[0], ids.index(items[path[1]].id), *path[2:]))
    return error


@router.get("/{round_id}", operation_id="get_round", responses={404: {"description": "No such round."}, **AUTH})
def get_round(round_id: str, request: Request, store: StoreDep, principal: ReaderDep) -> dict[str, Any]:
    """The round's stage, each district's status and progress, and the joined plan when done."""
    return round_out(get_rounds(request), _round_of(get_rounds(request), round_id, principal), store, principal)


@router.delete("/{round_id}", operation_id="cancel_round", responses={404: {"description": "No such round."}, **AUTH})
def cancel_round(round_id: str, request: Request, store: StoreDep, principal: DispatcherDep) -> dict[str, Any]:
    """Cancel every district's plan; each keeps its best plan so far, and the round joins them."""
    rounds = get_rounds(request)
    record = _round_of(rounds, round_id, principal)
    for entry in record.districts.values():
        for plan_id in (entry.get("plan_id"), entry.get("offer_plan_id")):
            if plan_id:
                store.request_cancel(plan_id)
                rounds.runner.cancel(plan_id)
    return round_out(rounds, record, store, principal)


def _round_of(rounds: Rounds, round_id: str, principal: Principal) -> RoundRecord:
    record = rounds.get(round_id)
    if record is None or record.organisation != principal.organisation:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'no round "{round_id}"')
    return record


def round_out(rounds: Rounds, record: RoundRecord, store: Store, principal: Principal) -> dict[str, Any]:
    rows = rounds.plan_rows(record, documents=False)
    districts = {}
    for district, entry in sorted(record.districts.items()):
        current = entry.get("offer_plan_id") or entry.get("plan_id")
        row = rows.get(current or "")
        districts[district] = {
            "plan_id": entry.get("plan_id"),
            "offer_plan_id": entry.get("offer_plan_id"),
            "offered": len(entry.get("offered", {})),
            "status": row.status.value if row else "no vehicles",
            "progress": row.progress if row else None,
            "visits": row.visits if row else 0,
        }
    finished = record.stage == "done"
    return {
        "id": record.id,
        "name": record.name,
        "status": Status.DONE.value if finished else Status.SOLVING.value,
        "stage": record.stage,
        "url": round_url(record.id),
        "created_at": record.created_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "districts": districts,
        "plan": _redacted(record.document, principal) if finished else None,
    }


def _redacted(document: dict[str, Any] | None, principal: Principal) -> dict[str, Any] | None:
    """Each district's routes as ``principal`` may see them (notes, contacts: personal data)."""
    if document is None:
        return None
    def district(entry: dict[str, Any]) -> dict[str, Any]:
        routes = [redact_route(RouteOut.model_validate(r), principal).model_dump(mode="json")
                  for r in entry.get("routes") or []]
        return {**entry, "routes": routes}

    return {**document, "districts": [district(d) for d in document["districts"]]}
