"""The application: ``create_app()`` assembles it; the lifespan opens the database (and migrates
it), loads the road networks and starts the background solvers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from service.api import (
    callbacks,
    crew,
    errors,
    evaluate,
    field,
    health,
    matrix,
    networks,
    pages,
    plans,
    requests,
    rounds,
    versions,
    vroom,
)
from service.callbacks import CallbackSender
from service.config import Settings, get_settings
from service.idempotency import IdempotencyMiddleware
from service.jobs import JobRunner, LocalProcessRunner
from service.networks import NetworkRegistry
from service.plan_reads import PlanReads
from service.rounds import RoundKeeper, Rounds
from service.schemas import CONVENTIONS
from service.store import Store, migrate
from service.waits import PlanWaiter

log = logging.getLogger("service")


def create_app(settings: Settings | None = None, *, runner: JobRunner | None = None) -> FastAPI:
    """The Doorstep API. ``runner`` replaces the local worker processes (e.g. a Celery pool)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.getLogger("service").setLevel(settings.log_level)
        store = Store.from_url(settings.resolved_database_url)
        await run_in_threadpool(migrate, store.engine)
        registry = NetworkRegistry(settings)
        await run_in_threadpool(registry.load_all)
        job_runner = runner
        if job_runner is None and settings.runner == "celery":
            from service.celery_runner import CeleryRunner

            job_runner = CeleryRunner(settings, store)
        job_runner = job_runner or LocalProcessRunner(settings, store)
        await run_in_threadpool(job_runner.start)
        app.state.settings, app.state.store, app.state.networks, app.state.runner = (
            settings, store, registry, job_runner
        )
        app.state.waiter = PlanWaiter(store)
        app.state.plan_reads = PlanReads()
        # Callbacks are delivered from this process, never from a solving worker.
        sender = CallbackSender(store, settings)
        sender.start()
        app.state.rounds = Rounds(store, job_runner)
        keeper = RoundKeeper(app.state.rounds)
        keeper.start()
        try:
            yield
        finally:
            keeper.stop()
            await app.state.waiter.close()
            await run_in_threadpool(sender.stop)
            await run_in_threadpool(job_runner.stop)
            store.close()

    app = FastAPI(
        title="Doorstep",
        version="1",
        summary="Routes for mobile sampling buses and home-visit teams.",
        description=CONVENTIONS,
        lifespan=lifespan,
    )
    errors.install(app)
    # Added first, so innermost: an unhandled error is answered inside the other middlewares
    # (request id, CORS headers).
    app.add_middleware(errors.InternalErrorMiddleware)
    app.add_middleware(IdempotencyMiddleware)  # inside the body limit: it reads the body
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(errors.BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(errors.RequestIdMiddleware)
    for router in (plans.router, rounds.router, requests.router, field.router, crew.router, evaluate.router,
                   matrix.router, networks.router, health.router, pages.router, vroom.router, callbacks.router,
                   versions.router):
        app.include_router(router)
    _document_unreadable_bodies(app)
    app.mount("/static/vendor/leaflet", pages.leaflet_files(), name="leaflet")
    app.mount("/static", pages.static_files(), name="static")
    return app


UNREADABLE_BODY = {
    "description": "The body cannot be read as JSON text (e.g. it is not UTF-8).",
    "content": {"application/json": {"example": {"detail": "There was an error parsing the body"}}},
}


def _document_unreadable_bodies(app: FastAPI) -> None:
    """FastAPI answers 400 itself, before any route runs, to a body it cannot decode: every
    operation that takes a body says so (JSON that does not parse is a 422 like any bad field).
    Added to the generated document, so no route can forget it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict) and "requestBody" in operation:
                        operation["responses"].setdefault("400", UNREADABLE_BODY)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]
