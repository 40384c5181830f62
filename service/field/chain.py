"""A plan's chain: its versions, first to last, and the ledger that spans them (:mod:`service.ledger`).

Requests and documents are large (a version's request holds its travel matrices), so a chain
reads them from the store only when asked: recording an outcome needs the tasks, not the routes;
the progress needs the current version's routes, not every earlier one's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from service.ledger import Event, StepState, SystemEntry, step_states
from service.schemas import PlanDocument, StepOut, read_document
from service.store import PlanRow, Store

TASK_KINDS = ("visit", "stop")
ROUTE_KINDS = ("visit", "stop", "break")


class Chain:
    """Every version of a plan and its ledger."""

    def __init__(self, store: Store, rows: Sequence[PlanRow], events: list[Event]) -> None:
        if not rows:
            raise ValueError("a chain has at least its first version")
        self._store = store
        self._rows = list(rows)
        self._full: dict[str, PlanRow | None] = {}
        self._documents: dict[str, PlanDocument | None] = {}
        self.events = events

    def document(self, row: PlanRow | None) -> PlanDocument | None:
        """The plan document of a version (loaded with :attr:`versions` or :attr:`current`), read once."""
        if row is None:
            return None
        if row.id not in self._documents:
            self._documents[row.id] = read_document(row.document)
        return self._documents[row.id]

    def _loaded(self, row: PlanRow) -> PlanRow | None:
        """``row`` with its request and document, read once."""
        if row.id not in self._full:
            self._full[row.id] = self._store.get(row.id, request=True, document=True)
        return self._full[row.id]

    @property
    def root(self) -> PlanRow:
        return self._rows[0]

    @property
    def latest(self) -> PlanRow:
        return self._rows[-1]

    @cached_property
    def versions(self) -> list[PlanRow]:
        """Every version with its request and document."""
        return [full for row in self._rows if (full := self._loaded(row)) is not None]

    @cached_property
    def requests(self) -> list[Mapping[str, Any]]:
        """Each version's request (as stored), first to last; without the documents."""
        loaded = (self._full.get(row.id) or self._store.get(row.id, request=True) for row in self._rows)
        return [row.request or {} for row in loaded if row is not None]

    @cached_property
    def task_lists(self) -> list[Mapping[str, Any]]:
        """Each version's visits, bus stops and vehicles, first to last: what the ledger checks
        an entry against, read without the matrices and documents."""
        if "requests" in self.__dict__:
            return self.requests
        parts = self._store.request_parts([row.id for row in self._rows], ("visits", "stops", "vehicles"))
        return [parts[row.id] for row in self._rows if row.id in parts]

    @property
    def current_id(self) -> str | None:
        """The id of :attr:`current`, read without its document."""
        # The store writes a version's summary with its document (Store.finish).
        return next((row.id for row in reversed(self._rows) if row.summary is not None), None)

    @cached_property
    def current(self) -> PlanRow | None:
        """The newest version with routes (request and document loaded)."""
        current_id = self.current_id
        return next((self._loaded(row) for row in self._rows if row.id == current_id), None)

    @cached_property
    def states(self) -> dict[str, StepState]:
        return step_states(self.events)

    @property
    def cancelled(self) -> set[str]:
        return {
            step for e in self.events if e.outcome == SystemEntry.REPLANNED.value
            for step in e.payload.get("cancelled") or []
        }

    def tasks(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every visit and bus stop the plan has had (not cancelled): id -> (kind, its first request entry)."""
        cancelled = self.cancelled
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for request in self.task_lists:
            for kind, key in (("visit", "visits"), ("stop", "stops")):
                for item in request.get(key) or []:
                    if item["id"] not in found and item["id"] not in cancelled:
                        found[item["id"]] = (kind, item)
        return found

    def vehicle_ids(self) -> set[str]:
        """Every vehicle any version has had."""
        return {str(v.get("id")) for request in self.task_lists for v in request.get("vehicles") or []}


def load_chain(store: Store, row: PlanRow, events: list[Event]) -> Chain:
    return Chain(store, store.versions(row.root), events)


def route_steps(document: PlanDocument | None, kinds: Sequence[str] = TASK_KINDS) -> dict[str, list[StepOut]]:
    """vehicle id -> its steps of ``kinds``, in order."""
    if document is None:
        return {}
    return {r.vehicle_id: [s for s in r.steps if s.kind in kinds] for r in document.routes}


def planned_vehicle(document: PlanDocument | None) -> dict[str, str]:
    return {s.id: vehicle for vehicle, steps in route_steps(document).items() for s in steps}
