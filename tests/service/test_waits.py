"""``?wait=true`` holds no request thread and is capped by the server (issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.service.conftest import FAKES, small_request
from tests.service.serve import Server

WAITING = 45
"""More than the 40 threads of the server's pool, which the waits used to hold until they ended."""


async def _waits_and_a_read(server: Server) -> tuple[dict[str, Any], list[float], float]:
    limits = httpx.Limits(max_connections=WAITING + 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        loop = asyncio.get_running_loop()
        answered: list[float] = []

        async def wait_for_plan() -> None:
            response = await client.post("/v1/plans?wait=true", json=small_request(options={"time_limit_s": 10}))
            assert response.status_code in (200, 202), response.text
            answered.append(loop.time())

        waits = [asyncio.create_task(wait_for_plan()) for _ in range(WAITING)]
        listing: dict[str, Any] = {}
        while listing.get("count", 0) < WAITING:  # every wait's plan stored, all still waiting
            await asyncio.sleep(0.2)
            listing = (await client.get("/v1/plans", params={"limit": 1})).json()
        read_at = loop.time()
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return listing, answered, read_at


def test_waiting_requests_hold_no_thread(servers: Callable[..., Server]) -> None:
    server = servers("serve.log")
    server.wait_ready()
    listing, answered, read_at = asyncio.run(_waits_and_a_read(server))
    # Threads held by 40 waits left no thread to store the other 5 plans or to answer the read:
    # both came only after the first waits had answered, 10 s on.
    assert listing["count"] == WAITING
    assert read_at < min(answered), "the read had to wait for the waits"


def test_a_wait_answers_202_at_the_servers_cap(sqlite_url: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(sqlite_url, solve_function=f"{FAKES}:sleepy_solve", max_wait_s=0.5)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/plans?wait=true", json=small_request(options={"time_limit_s": 30}))
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        assert response.headers["location"] == response.json()["url"]
        assert client.get(response.json()["url"]).json()["status"] in ("queued", "solving")
