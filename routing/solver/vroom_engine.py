"""VROOM engine (pyvroom): fast, strong local search for home-visit days.

It covers what a home-visit day needs: capacities, several time windows per visit, service
times, skills, crew breaks, priorities, several depots, open ends, vehicle profiles and speeds,
shifts and fixed costs. It cannot express lab drops and sample age, bus stops, a maximum route
duration, minimal disruption or a makespan cost: :func:`vroom_unsupported` says why such a
problem goes to the other engines.

VROOM's objective is hierarchical: first the sum of the priorities of the tasks it serves, then
how many it serves, then cost. Doorstep's penalty for a required visit left out is
``unassigned_penalty * priority_factor ** priority``, so priorities are handed over in the same
proportion (:func:`vroom_priority`): serving more households beats travelling less, within each
priority class, on both sides. Arc costs are Doorstep's own (travel time and distance as the
objective weighs them), per vehicle class.

VROOM has no seed (it is deterministic for given input) and treats its time limit as an upper
bound: it stops when its exploration is done (facts.md), often well before the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import vroom

from routing.model import Problem
from routing.solver.engine import EngineRun, OnIncumbent, Routes
from routing.solver.ortools_engine import ORTOOLS
from routing.solver.scaling import (
    arc_costs,
    capacity_or_unlimited,
    scaled_fixed_cost,
    travel_times,
    vehicle_class,
)

EXPLORATION = 5
"""VROOM's exploration level (1-5): 5 tries the most starting solutions."""
QUICK_EXPLORATION = 0
"""The exploration level of the ``quick`` variant: a split day's whole-day construction
(:mod:`routing.solver.split`). On a 2,000-visit day level 0 answered in 9 s where level 5 took 41 s
with a 20 s timeout, serving as many households."""
MAX_PRIORITY = 100
"""VROOM's priorities are whole numbers 0-100."""
MAX_USER_COST = 2**31 - 1
"""VROOM reads costs as 32-bit integers: an unreachable pair costs this (never chosen)."""


def vroom_unsupported(problem: Problem, task_ids: Sequence[str]) -> str | None:
    """Why VROOM cannot solve this problem exactly, or None when it can."""
    del task_ids  # every visit VROOM can take is expressible; buses and stops are not
    if problem.stops or problem.labs:
        return "bus stops and lab drops with sample age"
    if not all(v.serves_visits for v in problem.vehicles):
        return "buses in a fleet with home visits"
    if any(v.max_duration_s is not None for v in problem.vehicles):
        return "a maximum route duration"
    if problem.objective.reassignment_cost > 0 and any(v.preferred_vehicle for v in problem.visits):
        return "preferred vehicles (minimal disruption)"
    if problem.objective.makespan_cost_per_s > 0:
        return "a makespan cost"
    return None


def vroom_priority(problem: Problem, priority: int) -> int:
    """VROOM's priority for a required visit of Doorstep priority ``priority``: its penalty's
    weight (``priority_factor ** priority``: 1, 4, 16, 64 by default), capped at VROOM's 100."""
    return min(MAX_PRIORITY, round(problem.objective.priority_factor ** int(priority)))


class _Input:
    """A VROOM input for ``problem`` restricted to ``task_ids``, and the way back to ids."""

    def __init__(self, problem: Problem, task_ids: Sequence[str]) -> None:
        self.problem = problem
        self.task_ids = list(task_ids)
        self.input = vroom.Input()
        dimensions = problem.dimensions
        tasks = [problem.visit(tid) for tid in self.task_ids]
        sites = list(range(len(problem.sites)))
        # One VROOM profile per vehicle class (profile, speed factor): its own times and costs.
        self.profile_of: dict[str, str] = {}
        for vehicle in problem.vehicles:
            cls = vehicle_class(vehicle)
            name = f"{cls.profile}@{cls.speed_factor:g}"
            if name not in self.profile_of.values():
                self.input.set_durations_matrix(name, travel_times(problem, cls, sites))
                self.input.set_costs_matrix(name, np.minimum(arc_costs(problem, cls, sites), MAX_USER_COST))
            self.profile_of[vehicle.id] = name
        skill_ids = {
            skill: k for k, skill in enumerate(sorted({s for v in problem.vehicles for s in v.skills} | {
                s for t in tasks for s in t.skills
            }))
        }
        totals = {dim: sum(t.demand.get(dim, 0) for t in tasks) for dim in dimensions}
        for k, vehicle in enumerate(problem.vehicles):
            self.input.add_vehicle(
                vroom.Vehicle(
                    id=k,
                    start=problem.site_index(vehicle.start_depot),
                    end=None if vehicle.end_depot is None else problem.site_index(vehicle.end_depot),
                    profile=self.profile_of[vehicle.id],
                    capacity=[capacity_or_unlimited(vehicle, dim, totals[dim]) for dim in dimensions],
                    skills={skill_ids[s] for s in vehicle.skills},
                    time_window=vroom.TimeWindow(vehicle.shift.start_s, vehicle.shift.end_s),
                    breaks=[
                        vroom.Break(b, [vroom.TimeWindow(brk.window.start_s, brk.window.end_s)], brk.duration_s)
                        for b, brk in enumerate(vehicle.breaks)
                    ],
                    costs=vroom.VehicleCosts(fixed=scaled_fixed_cost(vehicle)),
                )
            )
        for j, task in enumerate(tasks):
            self.input.add_job(
                vroom.Job(
                    id=j,
                    location=problem.site_index(task.id),
                    default_service=task.service_s,
                    delivery=[task.demand.get(dim, 0) for dim in dimensions],
                    skills={skill_ids[s] for s in task.skills},
                    priority=vroom_priority(problem, task.priority) if task.required else 0,
                    time_windows=[vroom.TimeWindow(w.start_s, w.end_s) for w in task.time_windows],
                )
            )

    def routes_of(self, solution: Mapping[str, object]) -> Routes:
        """Task and break ids per vehicle, in order, from VROOM's solution JSON."""
        routes: Routes = {}
        for route in solution.get("routes", ()):  # type: ignore[attr-defined]
            vehicle = self.problem.vehicles[int(route["vehicle"])]
            order = []
            for step in route["steps"]:
                if step["type"] == "job":
                    order.append(self.task_ids[int(step["id"])])
                elif step["type"] == "break":
                    order.append(vehicle.breaks[int(step["id"])].id)
            routes[vehicle.id] = order
        return routes


def solve_vroom(
    problem: Problem,
    task_ids: Sequence[str],
    *,
    deadline: float,
    threads: int = 1,
    exploration: int = EXPLORATION,
    on_incumbent: OnIncumbent | None = None,
) -> Routes:
    """VROOM's routes for ``task_ids``, by ``deadline`` (a ``time.time()`` value) at the latest.

    VROOM reports no incumbents on the way: its one answer is also handed to ``on_incumbent``.
    It takes no warm start: pyvroom 1.15 refused its own routes as initial ones ("Infeasible
    route for vehicle 0") on home-visit days with breaks, while accepting them on small cases.
    """
    data = _Input(problem, task_ids)
    remaining = max(0.05, deadline - time.time())
    solution = data.input.solve(
        exploration_level=exploration, nb_threads=threads, timeout=timedelta(seconds=remaining)
    )
    answer = solution.to_dict()
    routes = data.routes_of(answer)
    if on_incumbent is not None:
        on_incumbent(int(answer.get("summary", {}).get("cost", 0)), routes)
    return routes


class Vroom:
    """The engine object (:class:`routing.solver.engine.Engine`)."""

    name = "vroom"

    def unsupported(self, problem: Problem, task_ids: Sequence[str]) -> str | None:
        return vroom_unsupported(problem, task_ids)

    def alone(self, problem: Problem, seed: int, cores: int) -> EngineRun:
        return EngineRun(self, seed, threads=cores)

    def portfolio(self, problem: Problem, seed: int, cores: int) -> list[EngineRun]:
        # VROOM uses every core (it parallelises its own exploration) and usually finishes early;
        # OR-Tools' guided local search then goes on from its answer (measured in bench.homevisits).
        return [EngineRun(self, seed, threads=cores, then=ORTOOLS)]

    def run(
        self,
        problem: Problem,
        task_ids: Sequence[str],
        settings: EngineRun,
        *,
        deadline: float,
        initial: Mapping[str, Sequence[str]] | None,
        on_incumbent: OnIncumbent | None,
    ) -> Routes:
        del initial  # no warm start (see solve_vroom)
        exploration = QUICK_EXPLORATION if settings.variant == "quick" else EXPLORATION
        return solve_vroom(
            problem,
            task_ids,
            deadline=deadline,
            threads=settings.threads,
            exploration=exploration,
            on_incumbent=on_incumbent,
        )


VROOM = Vroom()
