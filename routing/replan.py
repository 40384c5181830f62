"""Re-planning the rest of a day: what is left of a plan, as a new problem.

In the field every step is logged and what is left is planned again when a team falls behind
or urgent requests arrive. :func:`rest_of_day` takes the problem a plan was made for, the
order each vehicle was given, and what happened since (steps attempted, steps in progress,
cancellations, new visits, vehicles that dropped out or joined), and returns the problem of the
rest of the day:

- attempted visits (whatever their outcome) and visits in progress are no longer in it: they
  stay fixed where they are in the previous version (:attr:`RestOfDay.kept`);
- each vehicle that has left starts where it is: a new depot at the location of its last
  attempted or in-progress step (or its GPS position), with its shift starting at
  ``max(now, end of the step in progress)``; tubes used so far come off its capacity, breaks
  already taken or already missed are dropped, and its ``max_duration_s`` is what is left of it;
- every remaining visit prefers the vehicle it had (``Visit.preferred_vehicle``), and the
  objective charges ``reassignment_cost`` for moving one (minimal disruption);
- ``not_home`` visits to retry get their windows cut to start ``retry_after_s`` from now (those
  whose windows close before are left out and listed in :attr:`RestOfDay.not_retried`).

No road network is needed: the new travel matrices are rows and columns of ``matrices``, which
cover the old problem's sites, then the new visits, then the GPS positions (default: the old
problem's own matrices, enough when there are neither new visits nor positions).

Times are seconds from midnight of the plan's day, as everywhere in :mod:`routing.model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from routing.errors import ProblemError, UnknownReferenceError
from routing.evaluate import evaluate
from routing.model import (
    HORIZON_S,
    BusStop,
    Depot,
    Location,
    Problem,
    TimeWindow,
    TravelMatrix,
    Vehicle,
    Visit,
)

DEFAULT_RETRY_AFTER_S = 3600
"""A resident not at home is tried again no earlier than an hour later."""

DEFAULT_REASSIGNMENT_COST = 900.0
"""Move a visit to another team only if that saves 15 minutes of driving (default objective)."""

POSITION_DEPOT_PREFIX = "at:"
"""Id of the depot where a vehicle is when re-planning: ``"at:" + vehicle id``."""


@dataclass(frozen=True, slots=True)
class RestOfDay:
    """The remaining problem, and how it relates to the plan it continues."""

    problem: Problem
    initial: dict[str, list[str]]
    """Warm start: each vehicle's previous order, restricted to what remains (breaks included)."""
    kept: dict[str, list[str]]
    """Per vehicle, the steps that stay fixed: attempted, then the one in progress, in route order."""
    start_s: dict[str, int]
    """When each vehicle of the new problem is free to go on (its new shift start)."""
    not_retried: tuple[str, ...] = ()
    """Visits asked to be retried whose windows all close before the retry could start: not in
    the problem, to be reported (and carried over) rather than served outside their windows."""


@dataclass(frozen=True, slots=True)
class Disruption:
    """How much a new version moves visits between vehicles."""

    compared: int
    """Visits assigned in both versions."""
    moved: tuple[str, ...]
    """Of those, the ones on another vehicle now."""

    @property
    def fraction(self) -> float:
        return len(self.moved) / self.compared if self.compared else 0.0


def disruption(before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]]) -> Disruption:
    """Which visits assigned in both ``before`` and ``after`` (vehicle -> step ids) changed vehicle."""
    owner_before = {step: vehicle for vehicle, steps in before.items() for step in steps}
    owner_after = {step: vehicle for vehicle, steps in after.items() for step in steps}
    common = [step for step in owner_after if step in owner_before]
    moved = tuple(sorted(step for step in common if owner_before[step] != owner_after[step]))
    return Disruption(compared=len(common), moved=moved)


def rest_of_day(
    problem: Problem,
    routes_before: Mapping[str, Sequence[str]],
    *,
    now_s: int,
    done: Collection[str] = (),
    in_progress: Mapping[str, str] | None = None,
    in_progress_since_s: Mapping[str, int] | None = None,
    retry_not_home: Collection[str] = (),
    retry_after_s: int = DEFAULT_RETRY_AFTER_S,
    cancelled: Collection[str] = (),
    new_visits: Sequence[Visit] = (),
    dropped_vehicles: Collection[str] = (),
    joined_vehicles: Sequence[Vehicle] = (),
    positions: Mapping[str, Location] | None = None,
    matrices: Mapping[str, TravelMatrix] | None = None,
    consumed: Mapping[str, Mapping[str, int]] | None = None,
    reassignment_cost: float = DEFAULT_REASSIGNMENT_COST,
) -> RestOfDay:
    """The problem of the rest of the day after ``routes_before`` (vehicle id -> step ids).

    ``done``: steps attempted, whatever the outcome (done, not home, refused, ...);
    ``in_progress``: vehicle id -> the step it is serving now, started at
    ``in_progress_since_s[vehicle]`` (default ``now_s``); ``retry_not_home``: visits to keep
    (even if attempted) with windows starting ``retry_after_s`` after ``now_s``;
    ``cancelled``: visits or stops no longer wanted; ``new_visits``: visits to add;
    ``dropped_vehicles`` / ``joined_vehicles``: changes to the fleet (a joined vehicle starts
    from one of the problem's depots, no earlier than ``now_s``); ``positions``: vehicle id ->
    GPS ``(lon, lat)``, where it is now; ``consumed``: vehicle id -> amounts used so far (default:
    the demand of its attempted and in-progress visits); ``matrices``: per profile, over
    ``problem.sites``, then ``new_visits``, then ``positions`` in their order.

    Raises :class:`UnknownReferenceError` for an id the problem does not have and
    :class:`ProblemError` for inconsistent input (e.g. new visits without matrices).
    """
    in_progress = dict(in_progress or {})
    since = dict(in_progress_since_s or {})
    positions = dict(positions or {})
    consumed = consumed or {}
    done_set, retry, cancelled_set, dropped = set(done), set(retry_not_home), set(cancelled), set(dropped_vehicles)
    _check_references(problem, routes_before, done_set | retry | cancelled_set, in_progress, dropped, positions)
    for vehicle in joined_vehicles:
        if vehicle.id in {v.id for v in problem.vehicles}:
            raise ProblemError(f'joined vehicle "{vehicle.id}" is already a vehicle of the plan',
                               path=("joined_vehicles", vehicle.id))
    n_old, n_new = len(problem.sites), len(new_visits)
    extended = _extended_matrices(problem, matrices, n_old + n_new + len(positions))
    position_index = {vehicle_id: n_old + n_new + i for i, vehicle_id in enumerate(positions)}

    attempted = done_set | set(in_progress.values())
    planned_departure = _planned_departures(problem, routes_before)
    owner = {step: vehicle for vehicle, steps in routes_before.items() for step in steps}

    # depot id -> (depot, matrix source); a vehicle's new position replaces its previous one
    depot_entries: dict[str, tuple[Depot, int]] = {d.id: (d, problem.site_index(d.id)) for d in problem.depots}
    vehicles: list[Vehicle] = []
    kept: dict[str, list[str]] = {}
    start_s: dict[str, int] = {}
    for vehicle in problem.vehicles:
        if vehicle.id in dropped:
            continue
        sequence = list(routes_before.get(vehicle.id, ()))
        current = in_progress.get(vehicle.id)
        steps_kept = [s for s in sequence if s in attempted and s != current]
        if current is not None:
            steps_kept.append(current)
        kept[vehicle.id] = steps_kept
        free_s = now_s
        if current is not None:
            task = problem.task(current)
            free_s = max(now_s, since.get(vehicle.id, now_s) + _service_s(task, vehicle))
        begin = max(vehicle.shift.start_s, free_s)
        start_depot = vehicle.start_depot
        source: int | None = None
        if vehicle.id in positions:
            source = position_index[vehicle.id]
        elif current is not None:
            source = problem.site_index(current)
        elif steps_kept:
            source = problem.site_index(steps_kept[-1])
        if source is not None:
            start_depot = POSITION_DEPOT_PREFIX + vehicle.id
            location = positions.get(vehicle.id) or problem.sites[source].location
            depot_entries[start_depot] = (Depot(start_depot, location), source)
        vehicles.append(
            _continuing(
                vehicle,
                start_depot=start_depot,
                begin_s=begin,
                left=source is not None,
                planned_departure_s=planned_departure.get(vehicle.id),
                used=consumed.get(vehicle.id) or _demand_of(problem, steps_kept),
                taken_breaks=_breaks_taken(vehicle, sequence, steps_kept),
            )
        )
        start_s[vehicle.id] = min(begin, vehicle.shift.end_s)
    for vehicle in joined_vehicles:
        begin = max(vehicle.shift.start_s, now_s)
        shift = TimeWindow(min(begin, vehicle.shift.end_s), vehicle.shift.end_s)
        vehicles.append(dataclasses.replace(vehicle, shift=shift))
        kept[vehicle.id] = []
        start_s[vehicle.id] = shift.start_s
    vehicle_ids = {v.id for v in vehicles}
    used_depots = {v.start_depot for v in vehicles} | {v.end_depot for v in vehicles if v.end_depot}
    used_depots |= {v.start_depot for v in joined_vehicles}  # an unknown one is reported by Problem
    kept_depots = [entry for depot_id, entry in depot_entries.items() if depot_id in used_depots]
    if not kept_depots:  # a problem needs a depot even when every vehicle dropped out
        kept_depots = list(depot_entries.values())[:1]
    depots = [depot for depot, _ in kept_depots]
    depot_sources = [source for _, source in kept_depots]

    gone = (attempted - retry) | cancelled_set | set(in_progress.values())
    visits: list[Visit] = []
    visit_sources: list[int] = []
    retry_from = now_s + retry_after_s
    not_retried: list[str] = []
    for visit in problem.visits:
        if visit.id in gone:
            continue
        preferred = owner.get(visit.id)
        changes: dict[str, object] = {"preferred_vehicle": preferred if preferred in vehicle_ids else None}
        if visit.id in retry:
            later = later_windows(visit, retry_from)
            if not later:
                not_retried.append(visit.id)
                continue
            changes["time_windows"] = later
        visits.append(dataclasses.replace(visit, **changes))  # type: ignore[arg-type]
        visit_sources.append(problem.site_index(visit.id))
    for j, visit in enumerate(new_visits):
        if visit.preferred_vehicle is not None and visit.preferred_vehicle not in vehicle_ids:
            visit = dataclasses.replace(visit, preferred_vehicle=None)
        visits.append(visit)
        visit_sources.append(n_old + j)
    stops: list[BusStop] = [s for s in problem.stops if s.id not in gone]
    stop_sources = [problem.site_index(s.id) for s in stops]
    lab_sources = [problem.site_index(lab.id) for lab in problem.labs]

    sources = np.array(depot_sources + visit_sources + stop_sources + lab_sources, dtype=np.intp)
    selected = {
        profile: TravelMatrix(m.durations_s[np.ix_(sources, sources)], m.distances_m[np.ix_(sources, sources)])
        for profile, m in extended.items()
    }
    area_walk_m = problem.area_walk_m
    if area_walk_m is not None:
        keep = [i for i, s in enumerate(problem.stops) if s.id not in gone]
        area_walk_m = area_walk_m[:, keep]
    objective = dataclasses.replace(problem.objective, reassignment_cost=float(reassignment_cost))
    rest = problem.replace(
        depots=depots,
        vehicles=vehicles,
        visits=visits,
        stops=stops,
        matrices=selected,
        objective=objective,
        area_walk_m=area_walk_m,
    )
    remaining = {v.id for v in visits} | {s.id for s in stops}
    initial: dict[str, list[str]] = {}
    for vehicle in vehicles:
        breaks = {b.id for b in vehicle.breaks}
        order = [s for s in routes_before.get(vehicle.id, ()) if s in remaining or s in breaks]
        if order:
            initial[vehicle.id] = order
    return RestOfDay(problem=rest, initial=initial, kept=kept, start_s=start_s, not_retried=tuple(not_retried))


def _check_references(
    problem: Problem,
    routes_before: Mapping[str, Sequence[str]],
    steps: set[str],
    in_progress: Mapping[str, str],
    dropped: set[str],
    positions: Mapping[str, Location],
) -> None:
    vehicle_ids = {v.id for v in problem.vehicles}
    for name, ids in (("routes_before", routes_before), ("dropped_vehicles", dropped),
                      ("in_progress", in_progress), ("positions", positions)):
        for vehicle_id in ids:
            if vehicle_id not in vehicle_ids:
                raise UnknownReferenceError(f'{name}: "{vehicle_id}" is not a vehicle of the plan',
                                            path=(name, vehicle_id))
    task_ids = {t.id for t in problem.tasks}
    for step_id in sorted(steps | set(in_progress.values())):
        if step_id not in task_ids:
            raise UnknownReferenceError(f'"{step_id}" is not a visit or bus stop of the plan', path=(step_id,))


def _extended_matrices(
    problem: Problem, matrices: Mapping[str, TravelMatrix] | None, size: int
) -> Mapping[str, TravelMatrix]:
    if matrices is None:
        if size != len(problem.sites):
            raise ProblemError(
                "new visits or GPS positions need travel times: pass matrices over the plan's sites, "
                "then the new visits, then the positions",
                path=("matrices",),
            )
        return problem.matrices
    for profile in problem.matrices:
        if profile not in matrices:
            raise ProblemError(f'no travel matrix for profile "{profile}"', path=("matrices", profile))
    for profile, matrix in matrices.items():
        if matrix.size != size:
            raise ProblemError(
                f'travel matrix "{profile}" is {matrix.size}x{matrix.size}; re-planning needs {size}x{size} '
                "(the plan's sites, then the new visits, then the positions)",
                path=("matrices", profile),
            )
    return matrices


def _planned_departures(problem: Problem, routes_before: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """When each vehicle left its depot in the previous version (for what is left of max_duration_s)."""
    visit_ids = {v.id for v in problem.visits}
    try:
        evaluation = evaluate(
            problem,
            {vid: [s for s in steps if s in visit_ids or any(b.id == s for b in problem.vehicle(vid).breaks)]
             for vid, steps in routes_before.items()},
        )
    except ProblemError:
        return {}
    return {r.vehicle_id: r.start_s for r in evaluation.routes if r.is_used}


def _service_s(task: Visit | BusStop, vehicle: Vehicle) -> int:
    return task.service_s if isinstance(task, Visit) else vehicle.dwell_s(task)


def _demand_of(problem: Problem, steps: Sequence[str]) -> dict[str, int]:
    used: dict[str, int] = {}
    for step in steps:
        for dim, amount in problem.task(step).demand.items():
            used[dim] = used.get(dim, 0) + amount
    return used


def _breaks_taken(vehicle: Vehicle, sequence: Sequence[str], kept: Sequence[str]) -> set[str]:
    """Breaks listed before the last kept step of the previous order: taken already."""
    if not kept:
        return set()
    last = max(sequence.index(s) for s in kept if s in sequence) if any(s in sequence for s in kept) else -1
    ids = {b.id for b in vehicle.breaks}
    return {s for s in sequence[: last + 1] if s in ids}


def _continuing(
    vehicle: Vehicle,
    *,
    start_depot: str,
    begin_s: int,
    left: bool,
    planned_departure_s: float | None,
    used: Mapping[str, int],
    taken_breaks: set[str],
) -> Vehicle:
    """``vehicle`` from ``begin_s`` on, starting at ``start_depot``."""
    shift_end = vehicle.shift.end_s
    shift = TimeWindow(min(begin_s, shift_end), shift_end)
    breaks = tuple(
        b for b in vehicle.breaks if b.id not in taken_breaks and b.window.end_s >= shift.start_s
    )
    capacity = {dim: max(0, amount - int(used.get(dim, 0))) for dim, amount in vehicle.capacity.items()}
    max_duration_s = vehicle.max_duration_s
    if max_duration_s is not None and left:
        departed = planned_departure_s if planned_departure_s is not None else vehicle.shift.start_s
        max_duration_s = max(1, int(max_duration_s - max(0.0, shift.start_s - departed)))
    return dataclasses.replace(
        vehicle,
        start_depot=start_depot,
        shift=shift,
        breaks=breaks,
        capacity=capacity,
        max_duration_s=max_duration_s,
    )


def later_windows(visit: Visit, earliest_s: int) -> tuple[TimeWindow, ...]:
    """The visit's windows from ``earliest_s`` on; empty when none is left."""
    if earliest_s > HORIZON_S:
        return ()
    return tuple(TimeWindow(max(w.start_s, earliest_s), w.end_s) for w in visit.windows if w.end_s >= earliest_s)
