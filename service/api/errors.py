"""Error answers: 422 for bad input (with the field path), 413 for an oversize body, 503 when a
road network cannot answer, and 500 with a request id (details logged, never sent)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.errors import NetworkError, ProblemError
from service.schemas import error_loc

log = logging.getLogger("service.errors")


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors without the echoed input (it may hold personal data) or doc URLs."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


def unprocessable(loc: list[str | int], msg: str, kind: str = "input_error") -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [{"loc": loc, "msg": msg, "type": kind}]})


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_detail(error.errors())})

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> JSONResponse:
        return unprocessable(error_loc(error), str(error), type(error).__name__)

    @app.exception_handler(NetworkError)
    async def _network(request: Request, error: NetworkError) -> JSONResponse:
        log.error("network error (request %s): %s", _request_id(request), error)
        return JSONResponse(
            status_code=503,
            content={"detail": f"road network unavailable: {error}", "request_id": _request_id(request)},
        )

def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id") or getattr(request.state, "request_id", "-"))


class InternalErrorMiddleware:
    """Answers any unhandled exception with 500 and a request id, logged once, details never sent.

    Not an ``exception_handler(Exception)``: Starlette runs those in its outermost middleware and
    then re-raises, so the server logged every 500 a second time and closed the keep-alive
    connection. Caught here, inside the request-id middleware, the error ends with this answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = str(scope.get("state", {}).get("request_id") or "-")
            log.exception("internal error (request %s) on %s %s", request_id, scope.get("method"), scope.get("path"))
            if started:  # too late for a status: the server ends the unfinished response
                return
            body = json.dumps({"detail": "internal server error", "request_id": request_id}).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class RequestIdMiddleware:
    """Gives each request an id (``X-Request-ID``, the caller's if it sent one) for logs and 500s."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Answers 413 to a request body over ``max_bytes`` (by Content-Length, or while it streams)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send) -> None:
        body = (
            b'{"detail": "request body too large: the limit is %d bytes; split the problem '
            b'(e.g. by district) or ask the operators to raise DOORSTEP_MAX_BODY_BYTES"}' % self.max_bytes
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
