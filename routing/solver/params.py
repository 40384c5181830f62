"""How ``solve()`` searches: its budget, engine, seed and cores, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from routing.errors import ProblemError
from routing.solver.registry import AUTO, engine_named
from routing.solver.split import MIN_PART_TASKS, PART_TASKS


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveParams:
    """The settings of one solve. Bad values raise :class:`ProblemError` naming the field."""

    time_limit_s: float
    """Wall clock for the whole solve, stop choice and evaluation included."""
    engine: str = AUTO
    """``auto`` (the strongest engine that can model the problem) or an engine's name."""
    seed: int = 0
    cores: int | None = None
    """Engine processes side by side (default: every core of the machine)."""
    full_budget: bool = False
    """Use the whole time limit, even once the search has converged (``solver.converged``)."""
    in_process: bool = False
    """Run the first engine in this process (no cancellation, one core): notebooks and tests."""
    split: bool | None = None
    """Split the day into parts solved side by side (:mod:`routing.solver.split`): None lets
    ``auto`` split days above ``split_above_tasks``; True and False force it on or off."""
    split_above_tasks: int | None = None
    """Tasks above which ``auto`` splits; None: the size measured for the engine ``auto`` gives
    the day to (:data:`routing.solver.split.SPLIT_ABOVE_TASKS`; never for the others)."""
    part_tasks: int = PART_TASKS
    """About how many tasks each part of a split day holds."""

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ProblemError(f"time_limit_s must be > 0, got {self.time_limit_s}", path=("time_limit_s",))
        if self.engine != AUTO:
            engine_named(self.engine)
        if self.cores is not None and self.cores < 1:
            raise ProblemError(f"cores must be >= 1, got {self.cores}", path=("cores",))
        if self.split is not None and not isinstance(self.split, bool):
            raise ProblemError(f"split must be true, false or null, got {self.split!r}", path=("split",))
        if self.split_above_tasks is not None and self.split_above_tasks < 1:
            raise ProblemError(
                f"split_above_tasks must be >= 1, got {self.split_above_tasks}", path=("split_above_tasks",)
            )
        if self.part_tasks < MIN_PART_TASKS:
            raise ProblemError(
                f"part_tasks must be >= {MIN_PART_TASKS}, got {self.part_tasks}", path=("part_tasks",)
            )
        if self.split and self.in_process:
            raise ProblemError("split needs engine processes: in_process must be false", path=("split",))
