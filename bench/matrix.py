"""Benchmark: Doorstep's travel matrix against the networkx baseline OSMnx users write.

    python -m bench.matrix PBF --points 1000 --profile drive --seed 1 --out matrix.csv [--memory]

Snaps N random points (random nodes of the network plus a few metres of jitter, seeded), builds
the full N x N matrix with Doorstep (its compiled many-to-many Dijkstra), again through the cache
(identical second request), and with networkx's ``single_source_dijkstra_path_length`` per
source on the *same* graph and weights, in the same run. Both share the snapping and the
combination of node-to-node times with the partial edges and walking legs, so ``max_abs_diff_s``
compares the graph search itself, and must be ~0.

With many points the baseline runs a sample of points (``sampled_sources``); its ``matrix_s`` is
then extrapolated to all N points: Dijkstra time per distinct source node times the number of
distinct source nodes of all N points, plus the combination time scaled by N. Doorstep's
``matrix_s`` is the median over ``--repeats`` runs.

One CSV row per method, columns ``method,points,nodes,edges,load_s,snap_s,matrix_s,total_s,
max_abs_diff_s,sampled_sources``; default output ``bench/results/matrix.csv``.
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import dijkstra

from routing.fastest_paths import fastest_paths, threads_available
from routing.matrix import MatrixCache, assemble, matrix_from_snaps, to_points, travel_matrix
from routing.network import RoadNetwork, load_network
from routing.snapping import SnappedPoints, as_points, snap_arrays

COLUMNS = ["method", "points", "nodes", "edges", "load_s", "snap_s", "matrix_s", "total_s",
           "max_abs_diff_s", "sampled_sources"]
DEFAULT_OUT = Path(__file__).parent / "results" / "matrix.csv"
JITTER_DEG = 3e-5  # about 3 m: addresses sit beside the street, not on the node


def random_points(network: RoadNetwork, count: int, seed: int) -> list[tuple[float, float]]:
    """``count`` points inside the network's area: random nodes plus a few metres of jitter."""
    a = network.arrays
    rng = np.random.default_rng(seed)
    nodes = rng.choice(len(a.lon), count, replace=count > len(a.lon))
    jitter = rng.normal(0.0, JITTER_DEG, (count, 2))
    return list(zip((a.lon[nodes] + jitter[:, 0]).tolist(), (a.lat[nodes] + jitter[:, 1]).tolist(), strict=True))


def networkx_rows(network: RoadNetwork, snapped: SnappedPoints, rows: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Durations (s) of ``rows`` by networkx Dijkstra; seconds in Dijkstra and in combining."""
    a = network.arrays
    exits = snapped.exit_node[rows]
    sources = np.unique(exits[exits >= 0])
    position = {node: i for i, node in enumerate(a.node_ids.tolist())}
    # The graph an OSMnx user holds: a plain MultiDiGraph. Doorstep's own is frozen, on which
    # networkx's Dijkstra runs about 40 % slower (measured), which would flatter the ratio.
    graph = nx.MultiDiGraph(network.graph)
    start = time.perf_counter()
    times = np.full((len(sources), len(a.node_ids)), np.inf)
    for row, source in enumerate(a.node_ids[sources].tolist()):
        reached = nx.single_source_dijkstra_path_length(graph, source, weight="travel_time")
        times[row, [position[node] for node in reached]] = list(reached.values())
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    point_s, point_m = to_points(snapped, times, np.zeros_like(times))
    durations, _ = assemble(snapped, sources, point_s, point_m, rows=rows)
    return durations, search_s, time.perf_counter() - start


def peak_memory(network: RoadNetwork, count: int, seed: int) -> tuple[float, float]:
    """Peak traced allocation (MiB) of one uncached ``count`` x ``count`` matrix, and the process's maxrss (MiB)."""
    points = random_points(network, count, seed + 1)
    tracemalloc.start()
    travel_matrix(network, points)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    start = time.perf_counter()
    network = load_network(args.pbf, profile=args.profile)
    network.arrays, network.snap_tree  # noqa: B018  (building the routing arrays is part of loading)
    # So is the search kernel's one-off compilation (or loading it from numba's disk cache).
    jit_start = time.perf_counter()
    fastest_paths(network.arrays, np.array([0]), np.array([0]))
    jit_s = time.perf_counter() - jit_start
    load_s = time.perf_counter() - start
    nodes, edges = network.report.nodes, network.report.edges

    points = random_points(network, args.points, args.seed)
    array, labels = as_points(points, None)
    start = time.perf_counter()
    snapped = snap_arrays(network, array, labels)
    snap_s = time.perf_counter() - start

    matrix_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        matrix = matrix_from_snaps(network, snapped)
        matrix_times.append(time.perf_counter() - start)
    matrix_s = statistics.median(matrix_times)

    # The graph search alone (node to node), to set beside networkx's: on all cores, on one, and
    # scipy's (times only).
    sources = np.unique(snapped.exit_node[snapped.exit_node >= 0])
    targets = np.unique(snapped.entry_node[snapped.entry_node >= 0])
    search = {}
    for label, run_search in {
        f"doorstep ({threads_available()} threads)": lambda: fastest_paths(network.arrays, sources, targets),
        "doorstep (1 thread)": lambda: fastest_paths(network.arrays, sources, targets, threads=1),
        "scipy (times only)": lambda: dijkstra(network.arrays.csr_time_s, directed=True, indices=sources),
    }.items():
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run_search()
            runs.append(time.perf_counter() - start)
        search[label] = statistics.median(runs)

    cache = MatrixCache()
    travel_matrix(network, points, cache=cache)
    start = time.perf_counter()
    cached = travel_matrix(network, points, cache=cache)
    cached_s = time.perf_counter() - start
    assert cached is not None

    n = args.points
    sample = n if args.baseline_sources is None else min(n, args.baseline_sources)
    rows = np.sort(np.random.default_rng(args.seed).choice(n, sample, replace=False))
    baseline, search_s, combine_s = networkx_rows(network, snapped, rows)
    exits = snapped.exit_node
    all_sources = len(np.unique(exits[exits >= 0]))
    sampled_sources = len(np.unique(exits[rows][exits[rows] >= 0]))
    nx_matrix_s = search_s / sampled_sources * all_sources + combine_s * n / sample
    both = np.isfinite(baseline) & np.isfinite(matrix.durations_s[rows])
    diff = float(np.abs(baseline[both] - matrix.durations_s[rows][both]).max(initial=0.0))

    def row(method: str, snap: float, mat: float, max_diff: float, sampled: int) -> dict[str, object]:
        return {"method": method, "points": n, "nodes": nodes, "edges": edges, "load_s": round(load_s, 4),
                "snap_s": round(snap, 4), "matrix_s": round(mat, 4), "total_s": round(load_s + snap + mat, 4),
                "max_abs_diff_s": f"{max_diff:.3g}", "sampled_sources": sampled}

    results = [
        row("doorstep", snap_s, matrix_s, 0.0, n),
        row("doorstep_cached", 0.0, cached_s, 0.0, n),
        row("networkx", snap_s, nx_matrix_s, diff, sample),
    ]
    print(f"{n} x {n} points, {args.profile}, {nodes} nodes / {edges} edges ({all_sources} distinct source nodes)")
    print(f"  load {load_s:.3f} s (of which {jit_s:.3f} s loading the compiled search), snap {snap_s * 1000:.1f} ms")
    print(f"  doorstep matrix    {matrix_s:8.3f} s  (median of {args.repeats}: "
          f"{', '.join(f'{t:.3f}' for t in matrix_times)})")
    print(f"  doorstep cached    {cached_s * 1000:8.2f} ms  ({matrix_s / cached_s:,.0f}x faster than computing)")
    print(f"  networkx baseline  {nx_matrix_s:8.3f} s  ({sample} of {n} rows run, extrapolated)  "
          f"-> doorstep is {nx_matrix_s / matrix_s:.1f}x faster")
    nx_search_s = search_s / sampled_sources * all_sources
    for label, seconds in search.items():
        print(f"  graph search only, {label}: {seconds:.3f} s vs networkx {nx_search_s:.3f} s "
              f"-> {nx_search_s / seconds:.1f}x")
    print(f"  max |doorstep - networkx| = {diff:.3g} s over {int(both.sum()):,} pairs")
    if args.memory:
        traced, maxrss = peak_memory(network, args.memory_points, args.seed)
        print(f"  peak memory {args.memory_points} x {args.memory_points}: {traced:.0f} MiB traced "
              f"(tracemalloc, one uncached matrix), process maxrss {maxrss:.0f} MiB")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.matrix", description=__doc__.split("\n")[0])
    parser.add_argument("pbf", type=Path, help="OSM extract (.pbf, .osm, .osm.bz2 or .graphml)")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--profile", default="drive", choices=["drive", "walk"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=3, help="Doorstep matrix runs (median reported)")
    parser.add_argument("--baseline-sources", type=int, default=None,
                        help="run networkx for this many sampled points only (default: all)")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory of one matrix")
    parser.add_argument("--memory-points", type=int, default=2000)
    args = parser.parse_args(argv)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
