"""Error classes of the routing library.

They subclass built-ins so callers can catch broadly (``ValueError``) or narrowly
(``ProblemError``). Each carries ``path``: where in the input the problem is, so the
web service can name the field without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence


class DoorstepError(Exception):
    """Base class of every error raised by ``routing``."""


class ProblemError(DoorstepError, ValueError):
    """The input is inconsistent: an object or a field is wrong. Say which and why."""

    def __init__(self, message: str, *, path: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.path: tuple[str | int, ...] = tuple(path)


class UnknownReferenceError(ProblemError):
    """An object refers to another (a depot, a profile) that does not exist."""


class NetworkError(DoorstepError):
    """A road network cannot be loaded or cannot answer (routing failure, not bad input)."""


class SnapError(ProblemError):
    """A point is too far from any road of the profile it travels on."""


class SolverError(DoorstepError):
    """An engine failed in a way that is not the input's fault."""
