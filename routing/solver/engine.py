"""What an engine is to the solver: a name, what it cannot model, the runs it wants, and a run.

Each engine is one module with one object that fits :class:`Engine` (``ortools_engine.ORTOOLS``,
``pyvrp_engine.PYVRP``, ``vroom_engine.VROOM``), listed once in :mod:`routing.solver.registry`.
``solve()`` and the portfolio know engines only through this protocol: a new engine is a new
module and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from routing.model import Problem

Routes = dict[str, list[str]]
"""Vehicle id -> the ids of its steps between start and end (tasks, lab drops, breaks)."""
OnIncumbent = Callable[[int, Routes], object]
"""Called with each improving answer an engine finds (its own cost, the routes)."""


class Engine(Protocol):
    """A search engine as ``solve()`` sees it.

    Engine objects are small and stateless: a run names its engine by the object, which is
    pickled (by reference to its class) into the engine's worker process.
    """

    name: str
    """What ``options.engine`` calls it; also the start of every run's label."""

    def unsupported(self, problem: Problem, task_ids: Sequence[str]) -> str | None:
        """What of this problem the engine cannot model, as in "engine X cannot model ...",
        or None when it models all of it."""
        ...

    def alone(self, problem: Problem, seed: int, cores: int) -> EngineRun:
        """The one run made when the caller names this engine."""
        ...

    def portfolio(self, problem: Problem, seed: int, cores: int) -> list[EngineRun]:
        """The runs side by side (one process each) when ``auto`` gives the problem to it."""
        ...

    def run(
        self,
        problem: Problem,
        task_ids: Sequence[str],
        settings: EngineRun,
        *,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: OnIncumbent | None,
    ) -> Routes | None:
        """Routes for ``task_ids`` by ``deadline`` (a ``time.time()`` value), reporting improving
        answers on the way; None when it found nothing it stands by. ``initial`` is a warm start
        (vehicle id -> step ids), which an engine may ignore."""
        ...


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One engine with its settings, as one process of a portfolio."""

    engine: Engine
    seed: int = 0
    variant: str | None = None
    """A differently guided search of the same engine (OR-Tools' "tabu", PyVRP's "fleet")."""
    threads: int = 1
    """Threads the engine may use itself (VROOM parallelises its own exploration)."""
    then: Engine | None = None
    """An engine that goes on from this run's answer until the deadline."""
    part: int | None = None
    """Which independent part of the problem it searches (``routing.solver.parts``)."""

    @property
    def label(self) -> str:
        name = self.engine.name if self.variant is None else f"{self.engine.name}:{self.variant}"
        return f"{name}#{self.seed}" if self.part is None else f"{name}#{self.seed}@part{self.part}"
