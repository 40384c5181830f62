"""What the routes get from the app: settings, store, job runner, networks (set in the lifespan),
and who is calling (:func:`get_principal`, role checks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.auth import AuthError, Keys, Principal, PrincipalCache, Role
from service.config import Settings
from service.crew import bind_unplanned_key
from service.jobs import JobRunner
from service.networks import NetworkRegistry
from service.plan_reads import PlanReads
from service.store import PlanHead, PlanRow, Store
from service.waits import PlanWaiter

# ``async``: each is an attribute read, which the event loop does at once; a plain ``def``
# dependency costs a thread-pool round trip per request.


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


async def get_networks(request: Request) -> NetworkRegistry:
    networks: NetworkRegistry = request.app.state.networks
    return networks


async def get_plan_reads(request: Request) -> PlanReads:
    reads: PlanReads = request.app.state.plan_reads
    return reads


async def get_waiter(request: Request) -> PlanWaiter:
    waiter: PlanWaiter = request.app.state.waiter
    return waiter


P = ParamSpec("P")
T = TypeVar("T")


async def read_now(store: Store, principal: Principal, read: Callable[P, T], *args: P.args,
                   **kwargs: P.kwargs) -> T:
    """``read(*args)``, a short read of the store and the work on what it read, for the reads on
    every phone's and screen's path (a plan, a route and its exports).

    On an embedded SQLite database it runs on the event loop: a lookup by key in a local file
    (WAL: readers never wait for writers) takes about 0.1 ms, less than the thread pool's round
    trip, which was half of a plan read's cost. On a database server, a network round trip, it
    goes to the thread pool like any blocking work; so does the read of a crew key made before keys
    had plans, which binds it to the plan it opens (a write: it may wait for the database's lock).
    """
    binds_key = principal.role is Role.CREW and principal.plan_id is None
    if store.reads_are_local and not binds_key:
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
NetworksDep = Annotated[NetworkRegistry, Depends(get_networks)]
WaiterDep = Annotated[PlanWaiter, Depends(get_waiter)]
PlanReadsDep = Annotated[PlanReads, Depends(get_plan_reads)]


# -- who is calling ------------------------------------------------------------------------------

_BEARER = "Bearer"

API_KEY_HEADER = "X-API-Key"

# The two ways to send a key, as OpenAPI security schemes: /docs shows "Authorize" and generated
# clients carry the key. ``auto_error=False``: they only declare; :func:`get_principal` reads the
# headers itself, so its 401s keep saying what is wrong (a malformed header, a revoked key).
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, scheme_name="ApiKey", auto_error=False,
    description="An API key (`dsk_...`; a dispatcher creates keys with `doorstep keys create`).",
)
bearer_scheme = HTTPBearer(
    scheme_name="Bearer", bearerFormat="API key", auto_error=False,
    description="The same API key as a bearer token: `Authorization: Bearer dsk_...`.",
)
KeyHeader = Annotated[str | None, Security(api_key_scheme)]
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": _BEARER})


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(request: Request) -> str:
    """The key sent with ``request`` ("" if none); 401 for a malformed Authorization header."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("Authorization must be `Bearer <API key>`")
        return value.strip()
    return request.headers.get(API_KEY_HEADER, "")


def get_principal(request: Request, settings: SettingsDep, store: StoreDep) -> Principal:
    """The caller, from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

    Without a key: allowed (as a dispatcher of ``settings.default_organisation``) when auth is
    ``open``, or ``auto`` for a loopback client while no key has ever been created; otherwise 401.
    """
    token = _token(request)
    keys = Keys(store)
    if token:
        try:
            principal, expires_at = keys.authenticate_until(token)
        except AuthError as error:
            raise _unauthorized(str(error)) from None
        key_cache(request).put(token, principal, expires_at)
        return principal
    anonymous = Principal(Role.DISPATCHER, settings.default_organisation)
    if settings.auth == "open":
        return anonymous
    client = request.client.host if request.client else None
    if settings.auth == "auto" and _is_loopback(client) and not _auto_closed(request, keys):
        return anonymous
    raise _unauthorized(
        "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
        "(a dispatcher creates keys with `doorstep keys create`)"
    )


def key_cache(request: Request) -> PrincipalCache:
    """The process's recently authenticated keys (made on first use)."""
    cache: PrincipalCache | None = getattr(request.app.state, "key_cache", None)
    if cache is None:
        cache = request.app.state.key_cache = PrincipalCache(request.app.state.settings.key_cache_s)
    return cache


def _auto_closed(request: Request, keys: Keys) -> bool:
    """Whether ``auto`` mode has closed: a key has existed (revoking them all does not reopen it).
    Closing is for good, so once seen it is remembered for the process instead of asked again."""
    if getattr(request.app.state, "auto_closed", False):
        return True
    closed = keys.any_created()
    if closed:
        request.app.state.auto_closed = True
    return closed


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only ``roles`` through (403 naming the role that is needed).

    One dependency, not one on :func:`get_principal` (and its own on settings and store): on the
    path of every call, each dependency FastAPI resolves, and each ``def`` one's thread-pool round
    trip, cost more than the key lookup itself. A key seen in the last seconds is known without
    the database (:class:`PrincipalCache`), on the event loop; others are looked up in one round trip.
    """
    allowed = ", ".join(r.value for r in roles)

    # The scheme parameters are unused: they put the key's schemes on every operation that checks it.
    async def check(request: Request, _key: KeyHeader, _bearer: BearerToken) -> Principal:
        token = _token(request)
        principal = key_cache(request).get(token) if token else None
        if principal is None:
            principal = await run_in_threadpool(
                get_principal, request, request.app.state.settings, request.app.state.store)
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a {principal.role.value} key may not do this: it needs the role {allowed}",
            )
        return principal

    return check


PrincipalDep = Annotated[Principal, Depends(require(*Role))]
"""Any caller with a usable key (or anonymous access, where allowed)."""


DispatcherDep = Annotated[Principal, Depends(require(Role.DISPATCHER))]
ReaderDep = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.INTEGRATOR))]
"""Dispatchers and integrators: submit problems, read plans and progress."""
CrewOrDispatcherDep = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.CREW))]
CrewDep = Annotated[Principal, Depends(require(Role.CREW))]


def check_vehicle(principal: Principal, vehicle_id: str) -> None:
    """A crew key reaches only its own vehicle: 403 for any other."""
    if principal.role is Role.CREW and principal.vehicle_id != vehicle_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f'this crew key belongs to vehicle "{principal.vehicle_id}": it may not reach vehicle "{vehicle_id}"',
        )


def plan_of(store: Store, plan_id: str, principal: Principal, *, document: bool = False,
            request: bool = False) -> PlanRow:
    """The plan, if it exists in the caller's organisation (else 404: other organisations' plans
    are not even acknowledged)."""
    row = store.get(plan_id, document=document, request=request)
    if row is None or row.organisation != principal.organisation:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'no plan "{plan_id}"')
    check_plan(store, principal, row)
    return row


def head_of(store: Store, plan_id: str, principal: Principal) -> PlanHead:
    """:func:`plan_of`'s checks on the plan's head only (the reads that answer from what they kept)."""
    head = store.head(plan_id)
    if head is None or head.organisation != principal.organisation:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'no plan "{plan_id}"')
    check_plan(store, principal, head)
    return head


def check_plan(store: Store, principal: Principal, row: PlanRow | PlanHead) -> None:
    """A crew key reaches only its own plan (every version of it): 403 for any other. Vehicle
    ids are reused every day, so the vehicle alone would reach every day's route."""
    if principal.role is not Role.CREW:
        return
    if row.publication != "published":  # a draft is the dispatcher's until published
        raise HTTPException(status.HTTP_404_NOT_FOUND, f'no plan "{row.id}"')
    own = bind_unplanned_key(store, principal, row)
    if own != row.root:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f'this crew key belongs to plan "{own}" (vehicle "{principal.vehicle_id}"): it may not reach plan '
            f'"{row.id}"',
        )


Responses = dict[int | str, dict[str, Any]]
"""OpenAPI ``responses`` of a route: status -> description and example."""

AUTH: Responses = {
    401: {"description": "No API key, or an unknown or revoked one (see `WWW-Authenticate`).",
          "content": {"application/json": {"example": {"detail": "unknown API key"}}}},
    403: {"description": "The key's role may not do this (the message says which role may).",
          "content": {"application/json": {"example": {
              "detail": "a crew key may not do this: it needs the role dispatcher, integrator"}}}},
}
"""What every route that checks the caller's key may answer."""
