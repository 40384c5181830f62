"""Plans as the read path serves them, kept for as long as they do not change.

A plan read parsed the stored document, validated it into a :class:`PlanDocument`, redacted it for
the caller and serialised the answer: most of the read's cost, spent again on every poll of a
dispatcher's screen and every crew's download, for a plan that, once solved, changes only when it
is published, discarded, cancelled or purged. Each of those writes sets the row's ``updated_at``
(a purge its ``purged_at`` too), and the light row every read fetches anyway carries them: what is
kept is used only while that stamp is unchanged. So every API process knows when its copy is out
of date without being told, and there is nothing to invalidate.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from service.schemas.document import PlanDocument, read_document
from service.store import PlanHead, PlanRow, Store

MAX_DOCUMENTS = 32
"""Typed documents kept (a 2,000-visit day's is some megabytes as objects)."""
MAX_ANSWER_BYTES = 32 << 20
"""Serialised answers kept, in bytes in all."""


def stamp(row: PlanRow | PlanHead) -> tuple[Any, ...]:
    """What changes whenever anything a read serves of ``row`` changes."""
    return row.id, row.updated_at, row.purged_at, row.publication, row.status


class PlanReads:
    """Typed documents and serialised answers of recently read plans, by :func:`stamp`. Thread-safe."""

    def __init__(self, *, max_documents: int = MAX_DOCUMENTS, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.max_documents = max_documents
        self.max_answer_bytes = max_answer_bytes
        self._documents: OrderedDict[tuple[Any, ...], PlanDocument | None] = OrderedDict()
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._answer_bytes = 0
        self._lock = threading.Lock()

    def document(self, store: Store, row: PlanRow) -> PlanDocument | None:
        """``row``'s plan document, validated (None while it has none); read from the store only
        when not kept for this stamp. ``row`` may be a light row (without its document)."""
        key = stamp(row)
        with self._lock:
            if key in self._documents:
                self._documents.move_to_end(key)
                return self._documents[key]
        # Read after the stamp: at worst a newer document under an older stamp, never the reverse.
        document = read_document(row.document if row.document is not None else store.document(row.id))
        with self._lock:
            self._documents[key] = document
            while len(self._documents) > self.max_documents:
                self._documents.popitem(last=False)
        return document

    def answer(self, row: PlanRow | PlanHead, variant: Hashable, build: Callable[[], bytes]) -> bytes:
        """The serialised answer ``build()`` gives for ``row`` (and ``variant``: who may see what),
        built only when not kept for this stamp."""
        key = (stamp(row), variant)
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                return found
        body = build()
        if len(body) > self.max_answer_bytes // 4:
            return body  # one large day must not push out everyone else's
        with self._lock:
            if key not in self._answers:
                self._answers[key] = body
                self._answer_bytes += len(body)
            while self._answer_bytes > self.max_answer_bytes:
                _, dropped = self._answers.popitem(last=False)
                self._answer_bytes -= len(dropped)
        return body
