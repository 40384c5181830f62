"""Integer views of a problem, shared by the engines (both want int64 data).

Travel times are rounded *up* (a plan the engine thinks feasible must also be on time in exact
arithmetic, where the evaluator checks it); costs are scaled by ``COST_SCALE`` and rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routing.model import BusStop, Problem, Vehicle, Visit

COST_SCALE = 100
"""Engine cost units per objective unit: keeps fractional costs (0.5 per second) exact enough."""

NO_PATH_S = 10**8
"""Stand-in travel time for a pair with no path: longer than any horizon, so never feasible."""


@dataclass(frozen=True, slots=True)
class VehicleClass:
    """Vehicles that share travel times and arc costs: same profile and speed factor."""

    profile: str
    speed_factor: float


def vehicle_class(vehicle: Vehicle) -> VehicleClass:
    return VehicleClass(vehicle.profile, vehicle.speed_factor)


def travel_times(problem: Problem, cls: VehicleClass, sites: Sequence[int]) -> NDArray[np.int64]:
    """Whole seconds from site to site for ``cls``, rounded up; ``NO_PATH_S`` where unreachable."""
    index = np.asarray(sites, dtype=np.intp)
    durations = problem.matrices[cls.profile].durations_s[np.ix_(index, index)] / cls.speed_factor
    finite = np.isfinite(durations)
    out = np.full(durations.shape, NO_PATH_S, dtype=np.int64)
    # Subtract a hair before ceil so 12.000000001 from float noise does not become 13.
    out[finite] = np.ceil(durations[finite] - 1e-9).astype(np.int64)
    return out


def arc_costs(
    problem: Problem, cls: VehicleClass, sites: Sequence[int], *, scale: int = COST_SCALE
) -> NDArray[np.int64]:
    """Scaled cost of driving from site to site for ``cls`` (travel time and distance)."""
    index = np.asarray(sites, dtype=np.intp)
    matrix = problem.matrices[cls.profile]
    durations = matrix.durations_s[np.ix_(index, index)] / cls.speed_factor
    distances = matrix.distances_m[np.ix_(index, index)]
    objective = problem.objective
    cost = objective.duration_cost_per_s * durations + objective.distance_cost_per_m * distances
    finite = np.isfinite(cost)
    out = np.full(cost.shape, NO_PATH_S * scale, dtype=np.int64)
    out[finite] = np.rint(cost[finite] * scale).astype(np.int64)
    return out


def scaled_penalty(problem: Problem, task: Visit | BusStop, *, scale: int = COST_SCALE) -> int:
    return round(problem.objective.penalty_of(task) * scale)


def scaled_fixed_cost(vehicle: Vehicle, *, scale: int = COST_SCALE) -> int:
    return int(vehicle.fixed_cost) * scale


def capacity_or_unlimited(vehicle: Vehicle, dimension: str, total_demand: int) -> int:
    """A dimension the vehicle does not list is unlimited: the total demand bounds it."""
    return int(vehicle.capacity.get(dimension, total_demand))


def used_depot_sites(problem: Problem) -> list[int]:
    """Sites of the depots some vehicle starts or ends at, sorted: the engines' depot nodes
    (a depot no vehicle uses would otherwise be a node that must be visited)."""
    vehicles = problem.vehicles
    return sorted(
        {problem.site_index(v.start_depot) for v in vehicles}
        | {problem.site_index(v.end_depot) for v in vehicles if v.end_depot is not None}
    )
