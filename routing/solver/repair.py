"""The last safety net: make a plan feasible by taking out what breaks a rule.

Engines model the rules closely but not always exactly (the OR-Tools sample age leaves out
waiting, with a margin). When the evaluator still finds a violation, the task at fault leaves
the route and becomes an unassigned task with its reason; a missing final lab drop is added.
A plan is never returned late or overloaded because an engine's model was approximate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from routing.errors import UnknownReferenceError
from routing.evaluate import Evaluation, evaluate
from routing.model import BusStop, Problem, Visit
from routing.plan import Route, StepKind, Violation, ViolationKind

MAX_ROUNDS = 200
"""Fixes per route, and then per plan, before giving up."""
ACROSS_ROUTES = frozenset({ViolationKind.DUPLICATE_VISIT, ViolationKind.ALTERNATIVE_TWICE})
"""Violations that involve more than one route."""


def make_feasible(problem: Problem, routes: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Feasible routes (or as close as ``MAX_ROUNDS`` fixes get) and the task ids taken out.

    A route's own rules (windows, shift, capacity, breaks, sample age) depend on it alone, so each
    route at fault is repaired on its own, every fix checked against that route's schedule only:
    checking the whole plan after each fix took 6.5 s on a 750-visit day with labs, past the
    solve's time limit. What involves several routes is then fixed on the whole plan.
    """
    fixed = {vehicle_id: list(order) for vehicle_id, order in routes.items()}
    removed: list[str] = []
    evaluation = evaluate(problem, fixed)
    if evaluation.feasible:
        return fixed, removed
    for vehicle_id in dict.fromkeys(v.vehicle_id for v in evaluation.violations if v.kind not in ACROSS_ROUTES):
        alone = {vehicle_id: fixed.get(vehicle_id, [])}
        removed += _repair(problem, alone)
        fixed[vehicle_id] = alone[vehicle_id]
    removed += _repair(problem, fixed)
    return fixed, removed


def _repair(problem: Problem, fixed: dict[str, list[str]]) -> list[str]:
    """Fix the violations of ``fixed`` (in place) one by one; the task ids taken out."""
    removed: list[str] = []
    for _ in range(MAX_ROUNDS):
        evaluation = evaluate(problem, fixed)
        if evaluation.feasible:
            break
        violation = evaluation.violations[0]
        route = next(r for r in evaluation.routes if r.vehicle_id == violation.vehicle_id)
        order = fixed.setdefault(violation.vehicle_id, [])
        if violation.kind is ViolationKind.SAMPLES_UNDELIVERED:
            order.append(_nearest_lab(problem, route))
            continue
        if violation.kind is ViolationKind.SAMPLE_TOO_OLD:
            split = _split_batch(problem, fixed, evaluation, route)
            if split is not None:
                fixed[route.vehicle_id] = split
                continue
        if violation.kind is ViolationKind.BREAK_MISSING and violation.step_id is not None:
            placed = _place_break(problem, fixed, evaluation, route.vehicle_id, violation.step_id)
            if placed is not None:
                fixed[route.vehicle_id] = placed
                continue
        victim = _at_fault(problem, evaluation, route, violation)
        if victim is None:
            break
        order.remove(victim)
        removed.append(victim)
    return removed


def _late_batch(problem: Problem, route: Route) -> list[str]:
    """The tasks whose samples reach a lab too old (the first such batch)."""
    batch: list[str] = []
    for step in route.steps:
        if step.kind is StepKind.LAB:
            if step.oldest_sample_age_s is not None and step.oldest_sample_age_s > problem.max_sample_age_s:
                return batch
            batch = []
        elif step.kind.is_task:
            batch.append(step.id)
    return []


def _split_batch(
    problem: Problem, routes: dict[str, list[str]], evaluation: Evaluation, route: Route
) -> list[str] | None:
    """The route with an extra lab drop inside the late batch, if that leaves fewer violations.

    Long waits (a visit at 09:00, the next at 14:00) age samples in a way the engine's model
    does not count: dropping samples in between is the natural fix.
    """
    order = routes[route.vehicle_id]
    for task_id in _late_batch(problem, route):
        at = order.index(task_id) + 1
        lab = _nearest_lab(problem, route, after=task_id)
        trial = {**routes, route.vehicle_id: [*order[:at], lab, *order[at:]]}
        if len(evaluate(problem, trial).violations) < len(evaluation.violations):
            return trial[route.vehicle_id]
    return None


def _place_break(
    problem: Problem, routes: dict[str, list[str]], evaluation: Evaluation, vehicle_id: str, break_id: str
) -> list[str] | None:
    """The route with the missing break where it leaves the fewest violations, if that helps."""
    order = routes[vehicle_id]
    best: tuple[int, list[str]] | None = None
    for at in range(len(order) + 1):
        trial = [*order[:at], break_id, *order[at:]]
        count = len(evaluate(problem, {**routes, vehicle_id: trial}).violations)
        if count < len(evaluation.violations) and (best is None or count < best[0]):
            best = (count, trial)
    return None if best is None else best[1]


def _is_task(problem: Problem, step_id: str) -> bool:
    try:
        return isinstance(problem.site(step_id), Visit | BusStop)
    except UnknownReferenceError:  # a break
        return False


def _at_fault(problem: Problem, evaluation: Evaluation, route: Route, violation: Violation) -> str | None:
    """The task to take out for this violation."""
    if violation.kind is ViolationKind.SAMPLE_TOO_OLD:
        batch = _late_batch(problem, route)
        if batch:
            return batch[0]  # the oldest sample of the late batch
    if violation.step_id is not None and _is_task(problem, violation.step_id):
        return violation.step_id
    tasks = route.task_ids
    return tasks[-1] if tasks else None


def _nearest_lab(problem: Problem, route: Route, *, after: str | None = None) -> str:
    """The lab nearest the given task (default: the route's last task)."""
    vehicle = problem.vehicle(route.vehicle_id)
    durations = problem.matrices[vehicle.profile].durations_s
    task = after or (route.task_ids[-1] if route.task_ids else None)
    here = problem.site_index(task) if task else problem.site_index(vehicle.start_depot)
    return min(problem.labs, key=lambda lab: float(durations[here, problem.site_index(lab.id)])).id
