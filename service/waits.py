"""``?wait=true`` without holding a thread: requests wait on the event loop for their plan.

A waiting request used to poll the store from a thread-pool thread, asleep between polls: 40 of
them held every thread the server had, and a dispatcher's read waited 12.7 s behind them. Here a
waiting request is an asyncio future, and one task polls the store for all of them together,
one short query per interval however many wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool

from service.store import Store

log = logging.getLogger(__name__)


class PlanWaiter:
    """Futures for plans to finish, resolved by one polling task (started when someone waits)."""

    def __init__(self, store: Store, *, interval_s: float = 0.05) -> None:
        self.store = store
        self.interval_s = interval_s
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def wait(self, plan_id: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for ``plan_id`` to reach a final status; whether it did."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(plan_id, []).append(future)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="plan-waiter")
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            futures = self._waiting.get(plan_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(plan_id, None)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.interval_s)
            plan_ids = list(self._waiting)
            if not plan_ids:
                break
            try:
                final = await run_in_threadpool(self.store.final_among, plan_ids)
            except Exception:  # a database hiccup: the waits go on until their timeouts
                log.warning("polling %d waited plans failed", len(plan_ids), exc_info=True)
                continue
            for plan_id in final:
                for future in self._waiting.get(plan_id, []):
                    if not future.done():
                        future.set_result(None)
