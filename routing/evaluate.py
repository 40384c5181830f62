"""The independent evaluator: schedules and checks any order of steps per vehicle.

It shares no code with the engines' models. Given a problem and, per vehicle, an ordered list
of visit ids (and break ids where a break is taken), it recomputes arrival, waiting, service
and departure times, loads and cumulative distance, and lists every rule the order breaks.
Engines hand it their sequences and the plan's schedule is what it computes, so a plan's ETAs
and its feasibility verdict come from one place. Dispatchers use it as "plan mode" to check a
hand-made order before sending it.

Schedule rules (what every engine must model the same way):

- a vehicle leaves its start depot as late as it can without finishing later or missing a window
  (waiting is removed from the front of the day), never before its shift starts;
- travel takes ``duration / speed_factor``; service starts at the earliest opening of the first
  window that has not closed on arrival; arriving after every window has closed is ``late``;
- a break listed between two sites starts when its window opens or the vehicle is free, whichever
  is later; the vehicle drives as far as it can before it (a break may interrupt a drive but
  never a service);
- a break the route does not list is required when it can be taken neither before the route
  starts nor after it ends;
- an open-ended route ends when its last service ends; the shift must cover the whole route;
- loads are cumulative per dimension; a dimension the vehicle does not list is unlimited;
- at a bus stop the bus stays ``setup + people x seconds_per_person / lanes``; buses serve stops,
  teams serve visits, vans either; at most one stop of an alternatives group is used;
- at a lab the vehicle hands over everything it carries (its loads start again from zero); each
  sample dates from the start of the service that took it and must reach a lab within the
  problem's ``max_sample_age_s``; with labs in the problem, nothing may be carried home.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.errors import UnknownReferenceError
from routing.model import Amounts, Break, BusStop, Lab, Problem, TimeWindow, Vehicle, Visit, format_clock
from routing.plan import Route, Step, StepKind, Violation, ViolationKind

OPEN_END_ID = "open-end"
EPS_S = 1e-6
"""Float noise allowed on a time check: matrices are float seconds, windows whole seconds."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Scheduled routes (one per vehicle of the problem), violations, and the objective."""

    routes: tuple[Route, ...]
    violations: tuple[Violation, ...]
    missing: tuple[str, ...]
    """Visit ids in no route."""
    travel_cost: float
    penalty: float
    makespan_cost: float = 0.0
    """``objective.makespan_cost_per_s`` times the first departure to the last return."""

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def cost(self) -> float:
        return self.travel_cost + self.makespan_cost + self.penalty

    @property
    def vehicles_used(self) -> int:
        return sum(1 for r in self.routes if r.is_used)


def evaluate(problem: Problem, routes: Mapping[str, Sequence[str]]) -> Evaluation:
    """Schedule and check ``routes`` (vehicle id -> ordered visit and break ids).

    Vehicles not in ``routes`` stay at their depot. Raises :class:`UnknownReferenceError` for a
    vehicle, visit or break id the problem does not have: that is bad input, not a violation.
    """
    vehicle_ids = {v.id for v in problem.vehicles}
    for vehicle_id in routes:
        if vehicle_id not in vehicle_ids:
            raise UnknownReferenceError(
                f'route for "{vehicle_id}": not a vehicle of this problem', path=("routes", vehicle_id)
            )
    seen: dict[str, str] = {}
    scheduled: list[Route] = []
    violations: list[Violation] = []
    lab_ids = {lab.id for lab in problem.labs}
    for vehicle in problem.vehicles:
        sequence = list(routes.get(vehicle.id, ()))
        for step_id in sequence:
            if _is_break(vehicle, step_id) or step_id in lab_ids:
                continue  # breaks and lab drops may come back; tasks may not
            if step_id in seen:
                violations.append(
                    Violation(
                        vehicle.id,
                        ViolationKind.DUPLICATE_VISIT,
                        step_id,
                        f'"{step_id}" is already in the route of "{seen[step_id]}"',
                    )
                )
            else:
                seen[step_id] = vehicle.id
        route, route_violations = _schedule_route(problem, vehicle, sequence)
        scheduled.append(route)
        violations.extend(route_violations)
    violations.extend(_alternatives_used_twice(problem, seen))
    missing = tuple(t.id for t in problem.tasks if t.id not in seen)
    penalty = _missing_penalty(problem, missing)
    used = [r for r in scheduled if r.is_used]
    makespan_s = max(r.steps[-1].start_s for r in used) - min(r.steps[0].start_s for r in used) if used else 0.0
    return Evaluation(
        routes=tuple(scheduled),
        violations=tuple(violations),
        missing=missing,
        travel_cost=sum(r.cost for r in scheduled),
        penalty=penalty,
        makespan_cost=problem.objective.makespan_cost_per_s * makespan_s,
    )


def _is_break(vehicle: Vehicle, step_id: str) -> bool:
    return any(b.id == step_id for b in vehicle.breaks)


def _alternatives_used_twice(problem: Problem, served: Mapping[str, str]) -> list[Violation]:
    used: dict[str, str] = {}
    out: list[Violation] = []
    for stop in problem.stops:
        if stop.group is None or stop.id not in served:
            continue
        if stop.group in used:
            out.append(
                Violation(
                    served[stop.id],
                    ViolationKind.ALTERNATIVE_TWICE,
                    stop.id,
                    f'bus stops "{used[stop.group]}" and "{stop.id}" are alternatives (group "{stop.group}"): use one',
                )
            )
        else:
            used[stop.group] = stop.id
    return out


def _missing_penalty(problem: Problem, missing: Sequence[str]) -> float:
    """Visits and stops left out; with demand areas, people left without a stop in reach."""
    objective = problem.objective
    penalty = 0.0
    left_out = set(missing)
    groups_used = problem.alternatives_used(left_out)
    group_penalty: dict[str, float] = {}
    for task_id in missing:
        task = problem.task(task_id)
        if isinstance(task, BusStop) and problem.areas and not task.required:
            continue  # with areas, a stop is worth the people it covers, counted below
        if isinstance(task, BusStop) and task.group is not None:
            # At most one of a group may be used: a group left out is one stop missed (its dearest),
            # and none when another of its stops is used.
            if task.group not in groups_used:
                group_penalty[task.group] = max(group_penalty.get(task.group, 0.0), objective.penalty_of(task))
            continue
        penalty += objective.penalty_of(task)
    penalty += sum(group_penalty.values())
    if problem.areas:
        from routing.coverage import walk_matrix  # the evaluator's one shared helper: distances only

        walk = walk_matrix(problem)
        served = [j for j, stop in enumerate(problem.stops) if stop.id not in left_out]
        for i, area in enumerate(problem.areas):
            if not served or not (walk[i, served] <= area.walk_limit_m).any():
                penalty += objective.stop_penalty_per_person * area.population
    return penalty


def _schedule_route(problem: Problem, vehicle: Vehicle, sequence: list[str]) -> tuple[Route, list[Violation]]:
    breaks = {b.id: b for b in vehicle.breaks}
    for step_id in sequence:
        if step_id not in breaks:
            problem.site(step_id)  # raises UnknownReferenceError for an id that is not a site
            if step_id in problem.depot_ids:
                raise UnknownReferenceError(f'route of "{vehicle.id}": "{step_id}" is a depot, not a step')
    if not any(isinstance(problem.site(step_id), Visit | BusStop) for step_id in sequence if step_id not in breaks):
        # An unused vehicle stays at its depot: nothing to check, nothing to pay.
        start = _idle_step(problem, vehicle, StepKind.START)
        end = _idle_step(problem, vehicle, StepKind.END)
        return Route(vehicle.id, (start, end), 0.0), []
    # First pass from the shift start, to learn how late the vehicle can leave for free.
    _, _, slack_s = _forward(problem, vehicle, sequence, vehicle.shift.start_s, breaks)
    steps, violations, _ = _forward(problem, vehicle, sequence, vehicle.shift.start_s + slack_s, breaks)
    violations.extend(_route_level_violations(vehicle, steps, sequence))
    travel_s, distance_m = steps[-1].travel_s, steps[-1].distance_m
    objective = problem.objective
    # Lab handovers are priced like travel time: the engines must not make pointless drops.
    handover_s = sum(step.service_s for step in steps if step.kind is StepKind.LAB)
    moved = sum(
        1
        for step in steps
        if step.kind is StepKind.VISIT and problem.visit(step.id).preferred_vehicle not in (None, vehicle.id)
    )
    cost = (
        vehicle.fixed_cost
        + objective.duration_cost_per_s * (travel_s + handover_s)
        + objective.distance_cost_per_m * distance_m
        + objective.reassignment_cost * moved
    )
    return Route(vehicle.id, tuple(steps), cost), violations


def _idle_step(problem: Problem, vehicle: Vehicle, kind: StepKind) -> Step:
    depot_id = vehicle.start_depot if kind is StepKind.START else (vehicle.end_depot or vehicle.start_depot)
    location = problem.sites[problem.site_index(depot_id)].location
    t = float(vehicle.shift.start_s)
    return Step(kind, depot_id, location, t, 0.0, t, 0.0, t, Amounts(), 0.0, 0.0)


class _Walker:
    """Mutable state of one forward pass along a route."""

    def __init__(self, problem: Problem, vehicle: Vehicle, departure_s: float) -> None:
        matrix = problem.matrices[vehicle.profile]
        self.durations = matrix.durations_s
        self.distances = matrix.distances_m
        self.speed = vehicle.speed_factor
        self.vehicle = vehicle
        self.problem = problem
        self.t = departure_s
        self.site = problem.site_index(vehicle.start_depot)
        self.distance_m = 0.0
        self.travel_s = 0.0
        self.wait_total_s = 0.0
        self.slack_s = float("inf")
        self.load: dict[str, int] = {}
        self.oldest_sample_s: float | None = None
        self.pending_latest: tuple[float, float] = (float("inf"), 0.0)
        self.steps: list[Step] = []
        self.violations: list[Violation] = []

    def location(self, site: int) -> tuple[float, float]:
        return self.problem.sites[site].location

    def add(
        self,
        kind: StepKind,
        step_id: str,
        site: int,
        arrival: float,
        start: float,
        service: float,
        **extra: object,
    ) -> None:
        wait = start - arrival
        self.wait_total_s += wait
        self.steps.append(
            Step(
                kind,
                step_id,
                self.location(site),
                arrival,
                wait,
                start,
                service,
                start + service,
                Amounts(self.load),
                self.distance_m,
                self.travel_s,
                **extra,  # type: ignore[arg-type]
            )
        )
        self.t = start + service

    def flag(self, kind: ViolationKind, step_id: str | None, message: str) -> None:
        self.violations.append(Violation(self.vehicle.id, kind, step_id, message))

    def open_window(self, what: str, windows: tuple[TimeWindow, ...], arrival: float, step_id: str) -> float:
        """Service start: the earliest opening of the first window not yet closed (else late)."""
        window = next((w for w in windows if w.end_s + EPS_S >= arrival), None)
        if window is None:
            last = windows[-1]
            self.flag(
                ViolationKind.LATE,
                step_id,
                f"{what}: arrives {format_clock(int(arrival))}, after its last window {last} closed",
            )
            self.pending_latest = (float(last.end_s), arrival)
            return arrival
        start = max(arrival, float(window.start_s))
        self.pending_latest = (float(window.end_s), start)
        return start

    def note_latest(self, latest_s: float, start_s: float) -> None:
        # Savelsbergh's forward slack: leaving later by d keeps this step on time while
        # d <= waiting absorbed so far + (latest - start).
        self.slack_s = min(self.slack_s, self.wait_total_s + (latest_s - start_s))

    def travel_to(self, site: int, pending: list[Break], target_id: str) -> float:
        """Drive to ``site`` taking ``pending`` breaks on the way; return the arrival time."""
        duration = float(self.durations[self.site, site])
        distance = float(self.distances[self.site, site])
        if duration == float("inf") or distance == float("inf"):
            self.violations.append(
                Violation(
                    self.vehicle.id,
                    ViolationKind.NO_PATH,
                    target_id,
                    f'no {self.vehicle.profile} path from "{self.problem.sites[self.site].id}" to "{target_id}"',
                )
            )
            duration = distance = 0.0
        drive_left = duration / self.speed
        for brk in pending:
            free = self.t
            start = max(free, float(brk.window.start_s))
            # Until the break is due the vehicle drives on: that time is not waiting, and leaving
            # later cannot absorb it (only the idle rest, if it arrives before the break is due).
            driven = min(drive_left, start - free)
            drive_left -= driven
            at = site if drive_left == 0 else self.site
            self.add(StepKind.BREAK, brk.id, at, free + driven, start, float(brk.duration_s))
            self.note_latest(brk.window.end_s, start)
            if start > brk.window.end_s + EPS_S:
                self.violations.append(
                    Violation(
                        self.vehicle.id,
                        ViolationKind.BREAK_LATE,
                        brk.id,
                        f'break "{brk.id}" starts at {format_clock(int(start))}, after its window {brk.window}',
                    )
                )
        pending.clear()
        self.travel_s += duration / self.speed
        self.distance_m += distance
        self.site = site
        return self.t + drive_left

    def serve(self, task: Visit | BusStop, site: int, arrival: float) -> None:
        vehicle = self.vehicle
        if isinstance(task, Visit):
            kind, what, service = StepKind.VISIT, f'Visit "{task.id}"', task.service_s
            if not vehicle.serves_visits:
                self.flag(ViolationKind.WRONG_VEHICLE, task.id, f"{what}: a {vehicle.kind} does not make home visits")
            missing = task.skills - vehicle.skills
            if missing:
                self.flag(
                    ViolationKind.MISSING_SKILL,
                    task.id,
                    f'{what} needs {", ".join(sorted(missing))}, which "{vehicle.id}" lacks',
                )
        else:
            kind, what, service = StepKind.STOP, f'Bus stop "{task.id}"', vehicle.dwell_s(task)
            if not vehicle.serves_stops:
                self.flag(ViolationKind.WRONG_VEHICLE, task.id, f"{what}: a {vehicle.kind} does not staff bus stops")
            if task.max_dwell_s is not None and service > task.max_dwell_s:
                self.flag(
                    ViolationKind.DWELL_TOO_LONG,
                    task.id,
                    f'{what}: {task.people} people take {service / 60:.0f} min with "{vehicle.id}", '
                    f"over the {task.max_dwell_s / 60:.0f} min allowed",
                )
        start = self.open_window(what, task.windows, arrival, task.id)
        if task.demand:
            # A sample dates from the start of the service that took it.
            self.oldest_sample_s = start if self.oldest_sample_s is None else self.oldest_sample_s
        for dim, amount in task.demand.items():
            self.load[dim] = self.load.get(dim, 0) + amount
        self.add(kind, task.id, site, arrival, start, float(service), people=task.people)
        self.note_latest(*self.pending_latest)

    def drop(self, lab: Lab, site: int, arrival: float) -> None:
        start = self.open_window(f'Lab "{lab.id}" (closed)', lab.windows, arrival, lab.id)
        age = None if self.oldest_sample_s is None else start - self.oldest_sample_s
        delivered = Amounts(self.load)
        if age is not None and age > self.problem.max_sample_age_s + EPS_S:
            self.flag(
                ViolationKind.SAMPLE_TOO_OLD,
                lab.id,
                f'samples reach lab "{lab.id}" {age / 3600:.1f} h after they were taken '
                f"(limit {self.problem.max_sample_age_s / 3600:.1f} h)",
            )
        self.load = {}
        self.oldest_sample_s = None
        self.add(
            StepKind.LAB,
            lab.id,
            site,
            arrival,
            start,
            float(lab.handover_s),
            delivered=delivered,
            oldest_sample_age_s=age,
        )
        self.note_latest(*self.pending_latest)


def _forward(
    problem: Problem, vehicle: Vehicle, sequence: list[str], departure_s: float, breaks: dict[str, Break]
) -> tuple[list[Step], list[Violation], float]:
    walker = _Walker(problem, vehicle, departure_s)
    walker.add(StepKind.START, vehicle.start_depot, walker.site, departure_s, departure_s, 0.0)
    walker.wait_total_s = 0.0
    pending: list[Break] = []
    for step_id in sequence:
        if step_id in breaks:
            pending.append(breaks[step_id])
            continue
        site = problem.site_index(step_id)
        arrival = walker.travel_to(site, pending, step_id)
        target = problem.sites[site]
        if isinstance(target, Lab):
            walker.drop(target, site, arrival)
        else:
            walker.serve(problem.task(step_id), site, arrival)
    if vehicle.end_depot is None:
        # Open end: breaks listed last are taken where the last service ended.
        arrival = walker.travel_to(walker.site, pending, OPEN_END_ID)
        walker.add(StepKind.END, OPEN_END_ID, walker.site, arrival, arrival, 0.0)
    else:
        end_site = problem.site_index(vehicle.end_depot)
        arrival = walker.travel_to(end_site, pending, vehicle.end_depot)
        walker.add(StepKind.END, vehicle.end_depot, end_site, arrival, arrival, 0.0)
    walker.note_latest(vehicle.shift.end_s, arrival)
    if problem.labs and any(walker.load.values()):
        carried = ", ".join(f"{n} {dim}" for dim, n in sorted(walker.load.items()) if n)
        walker.flag(
            ViolationKind.SAMPLES_UNDELIVERED,
            None,
            f'"{vehicle.id}" ends its shift still carrying samples ({carried}); drop them at a lab first',
        )
    slack = max(0.0, min(walker.slack_s, walker.wait_total_s))
    return walker.steps, walker.violations, slack


def _route_level_violations(vehicle: Vehicle, steps: list[Step], sequence: list[str]) -> list[Violation]:
    violations: list[Violation] = []
    start, end = steps[0].departure_s, steps[-1].arrival_s
    if end > vehicle.shift.end_s + EPS_S:
        violations.append(
            Violation(
                vehicle.id,
                ViolationKind.SHIFT_OVERRUN,
                None,
                f'"{vehicle.id}" ends at {format_clock(int(end))}, after its shift {vehicle.shift}',
            )
        )
    if vehicle.max_duration_s is not None and end - start > vehicle.max_duration_s + EPS_S:
        violations.append(
            Violation(
                vehicle.id,
                ViolationKind.MAX_DURATION,
                None,
                f'"{vehicle.id}" works {(end - start) / 3600:.2f} h, over its limit of '
                f"{vehicle.max_duration_s / 3600:.2f} h",
            )
        )
    for dim, capacity in vehicle.capacity.items():
        peak = max(s.load.get(dim, 0) for s in steps)
        if peak > capacity:
            first = next(s for s in steps if s.load.get(dim, 0) > capacity)
            violations.append(
                Violation(
                    vehicle.id,
                    ViolationKind.OVER_CAPACITY,
                    first.id,
                    f'"{vehicle.id}" needs {peak} {dim} but carries {capacity}',
                )
            )
    listed = set(sequence)
    for brk in vehicle.breaks:
        if brk.id in listed:
            continue
        fits_before = brk.window.start_s + brk.duration_s <= start
        fits_after = end <= brk.window.end_s
        if not (fits_before or fits_after):
            violations.append(
                Violation(
                    vehicle.id,
                    ViolationKind.BREAK_MISSING,
                    brk.id,
                    f'"{vehicle.id}" works through its break window {brk.window} without break "{brk.id}"',
                )
            )
    return violations
