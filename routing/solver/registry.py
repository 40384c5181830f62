"""The engines ``solve()`` knows, by name, strongest first: the one place an engine is listed.

``auto`` gives a problem to the first engine, in this order, that can model all of it
(:meth:`Engine.unsupported`), and that engine says which runs to start
(:meth:`Engine.portfolio`). PyVRP is the strongest search on what it can express (facts.md);
VROOM expresses a home-visit day (breaks, skills, priorities) and reached more households than
OR-Tools (bench.homevisits); OR-Tools models every rule, so it is last and always reached.
"""

from __future__ import annotations

from routing.errors import ProblemError
from routing.solver.engine import Engine
from routing.solver.ortools_engine import ORTOOLS
from routing.solver.pyvrp_engine import PYVRP
from routing.solver.vroom_engine import VROOM

AUTO = "auto"
"""Not an engine: the strongest engine that can model the problem."""

_ENGINES: list[Engine] = [PYVRP, VROOM, ORTOOLS]


def engines() -> tuple[Engine, ...]:
    """Every engine, strongest first."""
    return tuple(_ENGINES)


def engine_names() -> tuple[str, ...]:
    """What ``options.engine`` accepts: ``auto``, then every engine's name, sorted."""
    return (AUTO, *sorted(engine.name for engine in _ENGINES))


def engine_named(name: str) -> Engine:
    """The engine called ``name``; a :class:`ProblemError` on ``engine`` if there is none."""
    for engine in _ENGINES:
        if engine.name == name:
            return engine
    raise ProblemError(f'engine must be one of {", ".join(engine_names())}, got "{name}"', path=("engine",))


def register(engine: Engine) -> None:
    """Add an engine that callers choose by name. It comes last, after OR-Tools, which models
    every problem: ``auto`` never reaches it (put it in ``_ENGINES`` to rank it)."""
    if engine.name == AUTO or any(e.name == engine.name for e in _ENGINES):
        raise ValueError(f"an engine named {engine.name!r} is already registered")
    _ENGINES.append(engine)


def unregister(name: str) -> None:
    """Remove an engine added with :func:`register`."""
    _ENGINES[:] = [e for e in _ENGINES if e.name != name]
