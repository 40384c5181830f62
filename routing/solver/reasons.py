"""Why a visit or bus stop is not in the plan.

Before solving, tasks that no vehicle could serve even alone are set aside with a reason
(no suitable vehicle, demand over every capacity, unreachable within any shift and window); the
engines never see them. After solving, a task the engines left out is explained from the final
routes: the fleet's capacity or time went to others, or (optional tasks) it was not worth it.
"""

from __future__ import annotations

import math

from routing.evaluate import Evaluation, evaluate
from routing.model import BusStop, Problem, Vehicle, Visit
from routing.plan import Reason, Unassigned

Task = Visit | BusStop


def _kind(task: Task) -> str:
    return "visit" if isinstance(task, Visit) else "stop"


def unservable_tasks(problem: Problem) -> dict[str, Unassigned]:
    """Visits and stops that no single vehicle can serve on its own, each with its reason."""
    out: dict[str, Unassigned] = {}
    for task in problem.tasks:
        reason = _why_unservable(problem, task)
        if reason is not None:
            out[task.id] = reason
    return out


def _why_unservable(problem: Problem, task: Task) -> Unassigned | None:
    kind = _kind(task)
    fit = [v for v in problem.vehicles if v.may_serve(task)]
    if not fit:
        if isinstance(task, Visit):
            needs = ", ".join(sorted(task.skills)) or "none"
            detail = f"no team or van that makes home visits has the skills it needs ({needs})"
        else:
            detail = "no bus or van can staff it within its longest allowed stay"
        return Unassigned(task.id, Reason.NO_SKILLED_VEHICLE, detail, kind)
    capable = [v for v in fit if v.can_carry(task.demand)]
    if not capable:
        over = ", ".join(f"{amount} {dim}" for dim, amount in task.demand.items())
        return Unassigned(task.id, Reason.OVER_CAPACITY, f"needs {over}, more than any suitable vehicle carries", kind)
    if any(_reachable_alone(problem, v, task) for v in capable):
        return None
    windows = ", ".join(str(w) for w in task.windows)
    return Unassigned(
        task.id,
        Reason.UNREACHABLE,
        f"no suitable vehicle can get there, serve it and be back within its shift and the window ({windows})",
        kind,
    )


def _reachable_alone(problem: Problem, vehicle: Vehicle, task: Task) -> bool:
    matrix = problem.matrices[vehicle.profile].durations_s
    start = problem.site_index(vehicle.start_depot)
    site = problem.site_index(task.id)
    there = float(matrix[start, site]) / vehicle.speed_factor
    service = task.service_s if isinstance(task, Visit) else vehicle.dwell_s(task)
    back = _way_back_s(problem, vehicle, site)
    if not (math.isfinite(there) and math.isfinite(back)):
        return False
    arrival = vehicle.shift.start_s + there
    for window in task.windows:
        if window.end_s < arrival:
            continue
        begin = max(arrival, window.start_s)
        # Leaving later removes the wait, so only travel and service count against the limit.
        busy = there + service + back
        if begin + service + back <= vehicle.shift.end_s and (
            vehicle.max_duration_s is None or busy <= vehicle.max_duration_s
        ):
            return True
    return False


def _way_back_s(problem: Problem, vehicle: Vehicle, site: int) -> float:
    """From the task to the end of the day: via the nearest lab when samples must be delivered."""
    durations = problem.matrices[vehicle.profile].durations_s
    end = None if vehicle.end_depot is None else problem.site_index(vehicle.end_depot)
    if not problem.labs:
        return 0.0 if end is None else float(durations[site, end]) / vehicle.speed_factor
    best = math.inf
    for lab in problem.labs:
        lab_site = problem.site_index(lab.id)
        home = 0.0 if end is None else float(durations[lab_site, end])
        best = min(best, float(durations[site, lab_site]) + lab.handover_s + home)
    return best / vehicle.speed_factor


INSERTION_CHECKS = 2000
"""Trial insertions (each a route evaluation) spent telling optional tasks "not worth it" from
"no room" in one plan: hundreds of optional tasks must not make explaining slower than solving."""


def explain_missing(problem: Problem, evaluation: Evaluation, set_aside: dict[str, Unassigned]) -> list[Unassigned]:
    """A reason for every task in no route: the set-aside reason, or one read off the routes."""
    out: list[Unassigned] = []
    budget = [INSERTION_CHECKS]
    used_of_group = problem.alternatives_used(evaluation.missing)
    for task_id in evaluation.missing:
        if task_id in set_aside:
            out.append(set_aside[task_id])
            continue
        task = problem.task(task_id)
        if isinstance(task, BusStop) and task.group in used_of_group:
            detail = f'its alternative "{used_of_group[task.group]}" (group "{task.group}") is used'
            out.append(Unassigned(task_id, Reason.ALTERNATIVE_USED, detail, "stop"))
            continue
        out.append(_why_left_out(problem, evaluation, task, budget))
    return out


def _why_left_out(problem: Problem, evaluation: Evaluation, task: Task, budget: list[int]) -> Unassigned:
    kind = _kind(task)
    fit = {v.id for v in problem.vehicles if v.may_serve(task) and v.can_carry(task.demand)}
    with_room = []
    for route in evaluation.routes:
        if route.vehicle_id not in fit:
            continue
        vehicle = problem.vehicle(route.vehicle_id)
        # With labs, racks empty at every drop: room is judged per trip, not per day.
        used = {} if problem.labs else route.steps[-1].load
        if all(used.get(dim, 0) + n <= vehicle.capacity.get(dim, math.inf) for dim, n in task.demand.items()):
            with_room.append(route.vehicle_id)
    optional = not task.required
    if optional and (budget[0] <= 0 or _fits_somewhere(problem, evaluation, task, with_room, budget)):
        # Out of checks: the optimiser left it out, which for an optional task means it judged
        # serving it not worth its penalty.
        detail = "optional: serving it would cost more than skipping it"
        return Unassigned(task.id, Reason.NOT_WORTH_SERVING, detail, kind)
    if not with_room:
        dims = ", ".join(sorted(task.demand)) or "capacity"
        return Unassigned(task.id, Reason.FLEET_FULL, f"every suitable vehicle's {dims} is taken by other tasks", kind)
    windows = ", ".join(str(w) for w in task.windows)
    priority = f"; priority {task.priority.name.lower()}" if isinstance(task, Visit) else ""
    return Unassigned(
        task.id,
        Reason.FLEET_FULL,
        f"no suitable route has time left for it within its shift and the window ({windows}){priority}",
        kind,
    )


def _fits_somewhere(
    problem: Problem, evaluation: Evaluation, task: Task, vehicle_ids: list[str], budget: list[int]
) -> bool:
    """Whether inserting the task anywhere in those routes keeps them feasible (bounded search)."""
    by_vehicle = {r.vehicle_id: r for r in evaluation.routes}
    for vehicle_id in vehicle_ids:
        order = [s.id for s in by_vehicle[vehicle_id].steps[1:-1]]
        for position in range(len(order) + 1):
            if budget[0] <= 0:
                return True  # unknown: take the optimiser's word that it was not worth it
            budget[0] -= 1
            trial = [*order[:position], task.id, *order[position:]]
            if evaluate(problem, {vehicle_id: trial}).feasible:
                return True
    return False
