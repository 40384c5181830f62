"""What the read path keeps of a plan (service.plan_reads) is used only while the plan is unchanged.

Through the API, a purge made by another process is seen at once: see
tests/service/test_field.py::test_purge_removes_personal_data_and_says_so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from service.plan_reads import PlanReads
from service.privacy import purge
from service.schemas import Status
from service.schemas.document import PlanDocument
from service.store import PlanRow, Store, migrate

DOCUMENT = {"summary": {}, "routes": [], "unassigned": [], "violations": [], "stats": {}}


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    store = Store.from_url(sqlite_url)
    migrate(store.engine)
    yield store
    store.close()


def finished_plan(store: Store) -> PlanRow:
    created = store.create({"visits": []}, name="day", time_limit_s=1, visits=0, vehicles=0)
    assert store.claim("worker-1") is not None
    assert store.finish(created.id, "worker-1", document=DOCUMENT) is Status.DONE
    row = store.get(created.id)
    assert row is not None
    return row


def test_a_kept_document_is_read_again_once_the_plan_changes(store: Store) -> None:
    reads = PlanReads()
    row = finished_plan(store)
    first = reads.document(store, row)
    assert isinstance(first, PlanDocument)
    assert reads.document(store, row) is first  # kept: no second read
    purge(store, plan_id=row.id)
    purged = store.get(row.id)
    assert purged is not None and purged.updated_at > row.updated_at and purged.purged_at is not None
    assert reads.document(store, purged) is not first


def test_an_answer_is_kept_per_stamp_and_variant_within_its_bytes(store: Store) -> None:
    reads = PlanReads(max_answer_bytes=400)
    row = finished_plan(store)
    built: list[str] = []

    def build(text: str) -> bytes:
        built.append(text)
        return text.encode() * 10

    assert reads.answer(row, True, lambda: build("a")) == b"a" * 10
    assert reads.answer(row, True, lambda: build("b")) == b"a" * 10  # kept
    assert reads.answer(row, False, lambda: build("c")) == b"c" * 10  # another variant (who may see what)
    later = replace(row, updated_at=row.updated_at + timedelta(seconds=1))
    assert reads.answer(later, True, lambda: build("d")) == b"d" * 10  # the plan changed: built again
    assert reads.answer(replace(row, publication="discarded"), True, lambda: build("e")) == b"e" * 10
    assert built == ["a", "c", "d", "e"]
    assert reads.answer(row, "big", lambda: b"x" * 200) == b"x" * 200  # over a quarter of the bytes:
    assert reads.answer(row, "big", lambda: b"y") == b"y"  # served, not kept
