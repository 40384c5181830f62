"""Crew links (dispatchers make, list and revoke them) and the crew's day (what the crew page reads).

The crew page records outcomes through the same ``POST /v1/plans/{id}/events`` as any client:
it can do nothing the API does not let a crew key do.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from service import crew
from service.api import deps
from service.api.deps import CrewDep, DispatcherDep, Responses, SettingsDep, StoreDep, key_cache, plan_of
from service.api.field import now_s
from service.api.links import CREW_LINK_LINKS
from service.auth import Keys
from service.crew_schemas import CrewDayOut, CrewLinkCreated, CrewLinkIn, CrewLinkList, CrewLinkOut
from service.field import load_chain
from service.ledger import Ledger

router = APIRouter(tags=["crews"])

AUTH: Responses = {**deps.AUTH, 404: {"description": "No plan with this id (in your organisation)."}}


@router.post(
    "/v1/plans/{plan_id}/crew-links",
    operation_id="create_crew_link",
    summary="A crew link for one vehicle: a URL and QR codes to open on the crew's phone",
    status_code=status.HTTP_201_CREATED,
    response_model=CrewLinkCreated,
    responses={201: {"links": CREW_LINK_LINKS},
               422: {"description": "No such vehicle in the plan, or the day is over (naming the field)."},
               **AUTH},
)
def create_crew_link(plan_id: str, body: CrewLinkIn, request: Request, settings: SettingsDep, store: StoreDep,
                     principal: DispatcherDep) -> CrewLinkCreated:
    """The link signs the phone in for `vehicle_id` of this plan and its re-planned versions only,
    until the end of the plan's day. Its secret is in the URL's fragment and the QR codes, shown
    once: only its hash is kept."""
    row = plan_of(store, plan_id, principal)
    versions = [store.get(v.id, request=True) or v for v in store.versions(row.root)]
    info, token = crew.create_link(store, row, versions, vehicle_id=body.vehicle_id, day=body.day, label=body.label)
    url = crew.link_url(settings.public_url or str(request.base_url), token)
    return CrewLinkCreated(**CrewLinkOut.of(info).model_dump(), url=url, qr_svg=crew.qr_svg(url),
                           qr_png=crew.qr_png_data_uri(url))


@router.get("/v1/plans/{plan_id}/crew-links", operation_id="list_crew_links",
            summary="The plan's crew links (never their secrets)", response_model=CrewLinkList, responses=AUTH)
def list_crew_links(plan_id: str, store: StoreDep, principal: DispatcherDep) -> CrewLinkList:
    row = plan_of(store, plan_id, principal)
    links = [CrewLinkOut.of(k) for k in Keys(store).list(plan_id=row.root)]
    return CrewLinkList(data=links, count=len(links))


@router.delete("/v1/plans/{plan_id}/crew-links/{prefix}", operation_id="revoke_crew_link",
               summary="Revoke a crew link: the phone's calls answer 401 from now on",
               response_model=CrewLinkOut, responses=AUTH)
def revoke_crew_link(plan_id: str, prefix: str, request: Request, store: StoreDep,
                     principal: DispatcherDep) -> CrewLinkOut:
    row = plan_of(store, plan_id, principal)
    keys = Keys(store)
    found = keys.get(prefix)
    if found is None or found.plan_id != row.root:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'plan {plan_id} has no crew link "{prefix}"')
    revoked = keys.revoke(prefix)
    assert revoked is not None
    key_cache(request).forget(revoked.prefix)  # the phone's next call answers 401, not in a few seconds
    return CrewLinkOut.of(revoked)


@router.get("/v1/crew/day", operation_id="get_crew_day",
            summary="The crew's day: its vehicle's current route with outcomes, what a re-plan changed, progress",
            response_model=CrewDayOut, responses=AUTH)
def get_crew_day(store: StoreDep, principal: CrewDep) -> CrewDayOut:
    """For a crew key (a crew link): the newest version of its plan with routes, its vehicle's
    steps in order with the outcome recorded for each, the steps it recorded that a re-plan took
    out of the rest of the day, and what the newest re-plan changed for it."""
    if principal.plan_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "this crew key has no plan yet: ask a dispatcher for a crew link of today's plan")
    row = plan_of(store, principal.plan_id, principal)
    assert principal.vehicle_id is not None
    chain = load_chain(store, row, Ledger(store).events(row.root))
    info = Keys(store).get(principal.key_prefix or "")
    out = crew.crew_day(chain, principal.vehicle_id, now_s=now_s(), expires_at=info.expires_at if info else None)
    return CrewDayOut.model_validate(out)
