"""The plan/job store on SQLite and PostgreSQL: migrations, the atomic claim, cancel, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from service.schemas import Status
from service.store import PlanRecord, Store, migrate, utcnow


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    migrate(store.engine)
    migrate(store.engine)  # a second upgrade is a no-op
    yield store
    store.close()


def _create(store: Store, name: str = "p") -> str:
    return store.create({"visits": []}, name=name, time_limit_s=1.0, visits=0, vehicles=1).id


def test_a_new_plan_is_queued(store: Store) -> None:
    row = store.get(_create(store), request=True)
    assert row is not None and row.status is Status.QUEUED and row.request == {"visits": []}
    assert row.created_at.tzinfo is not None


def test_claim_takes_the_oldest_queued_job_once(store: Store) -> None:
    first, second = _create(store, "first"), _create(store, "second")
    claimed = [store.claim("w1"), store.claim("w2"), store.claim("w3")]
    assert [c.plan_id if c else None for c in claimed] == [first, second, None]
    assert claimed[0] is not None and claimed[0].attempts == 1


def test_a_worker_cannot_write_to_a_job_it_does_not_hold(store: Store) -> None:
    plan_id = _create(store)
    store.claim("w1")
    assert store.heartbeat(plan_id, "w1") is True
    assert store.heartbeat(plan_id, "w2") is False
    assert store.finish(plan_id, "w2", document={"summary": {}}) is None
    assert store.finish(plan_id, "w1", document={"summary": {"cost": 1}}) is Status.DONE


def test_cancelling_a_queued_job_is_immediate_and_a_solving_one_is_flagged(store: Store) -> None:
    queued, solving = _create(store), _create(store)
    store.claim("w1")  # takes `queued` (oldest)
    store.claim("w2")
    store.request_cancel(solving)
    row = store.get(solving)
    assert row is not None and row.status is Status.SOLVING and row.cancel_requested
    assert store.heartbeat(solving, "w2") is False  # the worker is told to stop
    assert store.finish(solving, "w2", document={"summary": {}}) is Status.CANCELLED
    # a plan already being solved by w1 is untouched by cancelling another
    assert store.heartbeat(queued, "w1") is True


def test_a_stale_job_is_requeued_then_failed_after_max_attempts(store: Store) -> None:
    plan_id = _create(store)
    for attempt in (1, 2):
        assert store.claim(f"w{attempt}") is not None
        with store.engine.begin() as connection:
            connection.execute(update(PlanRecord).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        recovery = store.recover(stale_after_s=30, max_attempts=2)
        if attempt == 1:
            assert recovery.requeued == [plan_id]
        else:
            assert recovery.failed == [plan_id]
    row = store.get(plan_id)
    assert row is not None and row.status is Status.FAILED
    assert row.error is not None and "interrupted 2 times" in row.error["msg"]


def test_a_released_job_goes_back_to_the_queue_without_using_an_attempt(store: Store) -> None:
    plan_id = _create(store)
    store.claim("w1")
    assert store.release(plan_id, "w1")
    row = store.get(plan_id)
    assert row is not None and row.status is Status.QUEUED and row.attempts == 0


def test_pages_are_newest_first_with_a_total_count(store: Store) -> None:
    ids = [_create(store, f"p{i}") for i in range(5)]
    page, count = store.page(offset=1, limit=2)
    assert count == 5
    assert [r.id for r in page] == [ids[3], ids[2]]
    store.claim("w")
    assert store.page(status=Status.SOLVING)[1] == 1
