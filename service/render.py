"""A plan drawn over its streets as a PNG (matplotlib, Agg; no display, no pyplot state)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from service.exports import ATTRIBUTION

# Colour-blind-friendly qualitative palette (Okabe-Ito), then tab10 for larger fleets.
ROUTE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                 "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _street_segments(graphs: Iterable[nx.MultiDiGraph]) -> list[list[tuple[float, float]]]:
    """Every street once (either direction), as lon/lat polylines: the edge geometry when present."""
    seen: set[tuple[Any, Any]] = set()
    segments: list[list[tuple[float, float]]] = []
    for graph in graphs:
        for u, v, data in graph.edges(data=True):
            key = (u, v) if str(u) <= str(v) else (v, u)
            if key in seen:
                continue
            seen.add(key)
            geometry = data.get("geometry")
            if geometry is not None and hasattr(geometry, "coords"):
                segments.append([(float(x), float(y)) for x, y, *_ in geometry.coords])
            else:
                a, b = graph.nodes[u], graph.nodes[v]
                segments.append([(a["x"], a["y"]), (b["x"], b["y"])])
    return segments


def _figure_size(segments: Sequence[Sequence[tuple[float, float]]], longest_in: float) -> tuple[float, float]:
    """A figure shaped like the area (longest side ``longest_in``), plus room for the titles."""
    xs = [x for seg in segments for x, _ in seg]
    ys = [y for seg in segments for _, y in seg]
    if not xs:
        return (longest_in, longest_in)
    width = (max(xs) - min(xs)) * math.cos(math.radians((min(ys) + max(ys)) / 2)) or 1e-9
    height = (max(ys) - min(ys)) or 1e-9
    scale = longest_in / max(width, height)
    return (max(width * scale, 0.6 * longest_in), height * scale + 0.6)


def render_plan_map(
    document: Mapping[str, Any],
    streets: Sequence[nx.MultiDiGraph],
    path: Path,
    *,
    unassigned: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    size_in: float = 10.0,
    dpi: int = 150,
) -> Path:
    """Draw the plan document's routes over ``streets`` and save a PNG at ``path``.

    Streets are light grey; each used route has a colour (its road line, or straight segments
    without one) with its visits as numbered dots; depots are black squares; ``unassigned``
    visits (id -> lon/lat) are red crosses. The legend names each team, its travel mode, visits
    and distance; the map data is attributed "© OpenStreetMap contributors".
    """
    unassigned = unassigned or {}
    segments = _street_segments(streets)
    figure = Figure(figsize=_figure_size(segments, size_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()

    ax.add_collection(LineCollection(segments, colors="#c8c8c8", linewidths=0.6, zorder=1))

    xs: list[float] = [x for seg in segments for x, _ in seg]
    ys: list[float] = [y for seg in segments for _, y in seg]
    depots: dict[str, tuple[float, float]] = {}
    handles: list[Any] = []
    for i, route in enumerate(document.get("routes") or []):
        steps = route.get("steps") or []
        visits = [s for s in steps if s.get("kind") == "visit"]
        if not visits:
            continue
        colour = ROUTE_COLOURS[i % len(ROUTE_COLOURS)]
        geometry = route.get("geometry") or {}
        line = geometry.get("coordinates") or [s["location"] for s in steps]
        ax.plot([p[0] for p in line], [p[1] for p in line], color=colour, linewidth=2.2, alpha=0.85,
                solid_capstyle="round", zorder=3)
        ax.scatter([s["location"][0] for s in visits], [s["location"][1] for s in visits], s=34,
                   color=colour, edgecolors="white", linewidths=0.7, zorder=4)
        for number, step in enumerate(visits, start=1):
            ax.annotate(str(number), step["location"], xytext=(3, 3), textcoords="offset points",
                        fontsize=5.5, color=colour, zorder=5)
        for step in steps:
            if step.get("kind") in ("start", "end"):
                depots[str(step.get("id"))] = (float(step["location"][0]), float(step["location"][1]))
        km = float(route.get("distance_m") or 0) / 1000
        label = f"{route.get('vehicle_id')} ({route.get('profile')}): {len(visits)} visits, {km:.1f} km"
        handles.append(Line2D([], [], color=colour, linewidth=2.2, marker="o", markersize=5, label=label))
        xs += [p[0] for p in line]
        ys += [p[1] for p in line]

    if depots:
        ax.scatter([p[0] for p in depots.values()], [p[1] for p in depots.values()], marker="s", s=90,
                   color="black", edgecolors="white", linewidths=1.2, zorder=6)
        for name, (x, y) in depots.items():
            ax.annotate(name, (x, y), xytext=(6, -10), textcoords="offset points", fontsize=8,
                        fontweight="bold", zorder=7,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
        handles.append(Line2D([], [], marker="s", color="black", linestyle="none", markersize=8, label="depot"))
    if unassigned:
        points = list(unassigned.values())
        ax.scatter([p[0] for p in points], [p[1] for p in points], marker="x", s=60, color="#d62728",
                   linewidths=2, zorder=6)
        handles.append(Line2D([], [], marker="x", color="#d62728", linestyle="none", markersize=8,
                              markeredgewidth=2, label=f"not assigned ({len(points)})"))
        xs += [p[0] for p in points]
        ys += [p[1] for p in points]

    if xs:
        pad_x = (max(xs) - min(xs)) * 0.03 or 0.001
        pad_y = (max(ys) - min(ys)) * 0.03 or 0.001
        ax.set_xlim(min(xs) - pad_x, max(xs) + pad_x)
        ax.set_ylim(min(ys) - pad_y, max(ys) + pad_y)
        # degrees of longitude are shorter than of latitude: keep the streets' true shape
        ax.set_aspect(1 / math.cos(math.radians((min(ys) + max(ys)) / 2)))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#999999")

    summary = document.get("summary") or {}
    subtitle = (
        f"{summary.get('visits_assigned', 0)} visits assigned, {summary.get('visits_unassigned', 0)} unassigned; "
        f"{summary.get('vehicles_used', 0)} teams; "
        f"{float(summary.get('distance_m') or 0) / 1000:.1f} km"
    )
    if document.get("violations"):
        subtitle += f"; {len(document['violations'])} rule(s) broken, see the plan's violations"
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=11, loc="left")
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    ax.text(0.995, 0.005, ATTRIBUTION, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            color="#333333", bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
