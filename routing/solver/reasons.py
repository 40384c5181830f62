"""Why a visit is not in the plan.

Before solving, visits that no vehicle could serve even alone are set aside with a reason
(no skilled vehicle, demand over every capacity, unreachable within any shift and window); the
engines never see them. After solving, a visit the engines left out is explained from the final
routes: the fleet's capacity or time went to others, or (optional visits) it was not worth it.
"""

from __future__ import annotations

import math

from routing.evaluate import Evaluation, evaluate
from routing.model import Problem, Vehicle, Visit
from routing.plan import Reason, Unassigned


def unservable_visits(problem: Problem) -> dict[str, Unassigned]:
    """Visits that no single vehicle can serve on its own, each with its reason."""
    out: dict[str, Unassigned] = {}
    for visit in problem.visits:
        reason = _why_unservable(problem, visit)
        if reason is not None:
            out[visit.id] = reason
    return out


def _why_unservable(problem: Problem, visit: Visit) -> Unassigned | None:
    skilled = [v for v in problem.vehicles if visit.skills <= v.skills]
    if not skilled:
        needs = ", ".join(sorted(visit.skills))
        return Unassigned(visit.id, Reason.NO_SKILLED_VEHICLE, f"no vehicle has all of: {needs}")
    capable = [v for v in skilled if v.can_carry(visit.demand)]
    if not capable:
        over = ", ".join(f"{amount} {dim}" for dim, amount in visit.demand.items())
        return Unassigned(
            visit.id, Reason.OVER_CAPACITY, f"needs {over}, more than any vehicle with the skills carries"
        )
    if any(_reachable_alone(problem, v, visit) for v in capable):
        return None
    windows = ", ".join(str(w) for w in visit.windows)
    return Unassigned(
        visit.id,
        Reason.UNREACHABLE,
        f"no suitable vehicle can get there and back within its shift and the visit's window ({windows})",
    )


def _reachable_alone(problem: Problem, vehicle: Vehicle, visit: Visit) -> bool:
    matrix = problem.matrices[vehicle.profile].durations_s
    start = problem.site_index(vehicle.start_depot)
    site = problem.site_index(visit.id)
    there = float(matrix[start, site]) / vehicle.speed_factor
    back = 0.0 if vehicle.end_depot is None else float(matrix[site, problem.site_index(vehicle.end_depot)])
    back /= vehicle.speed_factor
    if not (math.isfinite(there) and math.isfinite(back)):
        return False
    arrival = vehicle.shift.start_s + there
    for window in visit.windows:
        if window.end_s < arrival:
            continue
        begin = max(arrival, window.start_s)
        end = begin + visit.service_s + back
        # Leaving later removes the wait, so only travel and service count against the limit.
        busy = there + visit.service_s + back
        if end <= vehicle.shift.end_s and (vehicle.max_duration_s is None or busy <= vehicle.max_duration_s):
            return True
    return False


def explain_missing(problem: Problem, evaluation: Evaluation, set_aside: dict[str, Unassigned]) -> list[Unassigned]:
    """A reason for every visit in no route: the set-aside reason, or one read off the routes."""
    out: list[Unassigned] = []
    for visit_id in evaluation.missing:
        if visit_id in set_aside:
            out.append(set_aside[visit_id])
            continue
        visit = problem.visit(visit_id)
        out.append(_why_left_out(problem, evaluation, visit))
    return out


def _why_left_out(problem: Problem, evaluation: Evaluation, visit: Visit) -> Unassigned:
    suitable = {v.id for v in problem.vehicles if visit.skills <= v.skills and v.can_carry(visit.demand)}
    with_room = []
    for route in evaluation.routes:
        if route.vehicle_id not in suitable:
            continue
        vehicle = problem.vehicle(route.vehicle_id)
        used = route.steps[-1].load
        if all(used.get(dim, 0) + n <= vehicle.capacity.get(dim, math.inf) for dim, n in visit.demand.items()):
            with_room.append(route.vehicle_id)
    if not visit.required and _fits_somewhere(problem, evaluation, visit, with_room):
        return Unassigned(
            visit.id,
            Reason.NOT_WORTH_SERVING,
            f"optional: serving it would cost more than its penalty ({visit.penalty})",
        )
    if not with_room:
        dims = ", ".join(sorted(visit.demand)) or "capacity"
        return Unassigned(
            visit.id, Reason.FLEET_FULL, f"every suitable vehicle's {dims} is taken by other visits"
        )
    windows = ", ".join(str(w) for w in visit.windows)
    return Unassigned(
        visit.id,
        Reason.FLEET_FULL,
        f"no suitable route has time left for it within its shift and the visit's window ({windows}); "
        f"priority {visit.priority.name.lower()}",
    )


def _fits_somewhere(problem: Problem, evaluation: Evaluation, visit: Visit, vehicle_ids: list[str]) -> bool:
    """Whether inserting the visit anywhere in those routes keeps them feasible (bounded search)."""
    by_vehicle = {r.vehicle_id: r for r in evaluation.routes}
    for vehicle_id in vehicle_ids:
        order = [s.id for s in by_vehicle[vehicle_id].steps[1:-1]]
        for position in range(len(order) + 1):
            trial = [*order[:position], visit.id, *order[position:]]
            if evaluate(problem, {vehicle_id: trial}).feasible:
                return True
    return False

