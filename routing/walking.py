"""Walking distances from demand areas to candidate bus stops, along a walk network.

Residents walk from where they live or work (an area's point, or its polygon's centroid) to a
bus stop; how far they walk decides which stops can serve them (``DemandArea.walk_limit_m``).
:func:`area_walk_m` gives the metres for every area and stop, in the shape
``routing.model.Problem(area_walk_m=...)`` expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from routing.matrix import assemble, source_costs
from routing.model import BusStop, DemandArea
from routing.network import RoadNetwork
from routing.snapping import snap_arrays

__all__ = ["area_walk_m"]


def area_walk_m(
    walk_network: RoadNetwork,
    areas: Sequence[DemandArea],
    stops: Sequence[BusStop],
    *,
    max_snap_m: float = 500.0,
) -> NDArray[np.float64]:
    """Walking metres (areas x stops) from each area's location to each stop along ``walk_network``.

    Distances are those of the fastest walk (for a walk network, the shortest one), including the
    few metres from each point to the nearest footway. An area farther than ``max_snap_m`` metres
    from any footway gets a row of ``inf`` and no error: nobody can walk from it, so it is simply
    uncovered (the plan gives the reason). Likewise a stop farther than ``max_snap_m`` from any
    footway gets a column of ``inf``. ``inf`` also marks pairs with no path.

    Dijkstra runs only from the areas' footways (not from the stops'), so the cost grows with the
    number of areas.
    """
    if walk_network.profile != "walk":
        raise ValueError(f'area_walk_m needs a walk network, got profile "{walk_network.profile}"')
    if max_snap_m <= 0:
        raise ValueError(f"max_snap_m must be > 0, got {max_snap_m}")
    n_areas, n_stops = len(areas), len(stops)
    out = np.full((n_areas, n_stops), np.inf)
    if n_areas == 0 or n_stops == 0:
        return out
    points = np.array([a.location for a in areas] + [s.location for s in stops], dtype=np.float64)
    labels: list[str | int] = [*(a.id for a in areas), *(s.id for s in stops)]
    # Snap with no limit (never raises), then treat points beyond the limit as unreachable.
    snapped = snap_arrays(walk_network, points, labels, max_snap_m=np.inf)
    near = snapped.distance_m <= max_snap_m
    rows = np.flatnonzero(near[:n_areas])
    if rows.size == 0:
        return out
    exits = snapped.exit_node[rows]
    sources = np.unique(exits[exits >= 0])
    times, lengths = source_costs(walk_network, snapped, sources)
    _, distances = assemble(snapped, sources, times, lengths, rows=rows)
    block = distances[:, n_areas:]
    block[:, ~near[n_areas:]] = np.inf
    out[rows] = block
    return out
