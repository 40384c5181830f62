"""Many-to-many fastest paths on a road network: travel time (s) and the length (m) driven.

One Dijkstra per source over the network's CSR arrays, compiled with numba and run without the
GIL, so the sources are split over the machine's cores with plain threads. Each search labels
nodes by (time, length) in lexicographic order: the fastest path, and among equally fast ones the
shortest, so the distance is what the vehicle drives along the path the time was computed for,
found in the same search.

Why not ``scipy.sparse.csgraph.dijkstra``: it holds the GIL (two threads took as long as one,
measured) and returns times only, so the distance needs its predecessor tree walked afterwards;
together that was half the matrix time. The results are the same: times agree with scipy and
networkx to the last bit (same sums in the same order along the path), distances within 1e-10 m.

Threads rather than numba's ``parallel=True``: numba's default threading layer aborts when two
threads launch parallel kernels at once, and the service builds matrices from several threads.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numpy.typing import NDArray

from routing.network import GraphArrays

__all__ = ["fastest_paths", "threads_available", "warm_up"]

SOURCES_PER_THREAD = 64
"""Below this many sources per thread, starting a thread costs more than it saves."""


def threads_available() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@numba.njit(nogil=True, cache=True)
def _sift_down(key_s, key_m, heap_node, size, i):
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        right = child + 1
        if right < size and (
            key_s[right] < key_s[child] or (key_s[right] == key_s[child] and key_m[right] < key_m[child])
        ):
            child = right
        if key_s[child] < key_s[i] or (key_s[child] == key_s[i] and key_m[child] < key_m[i]):
            key_s[child], key_s[i] = key_s[i], key_s[child]
            key_m[child], key_m[i] = key_m[i], key_m[child]
            heap_node[child], heap_node[i] = heap_node[i], heap_node[child]
            i = child
        else:
            return


@numba.njit(nogil=True, cache=True)
def _search(sources, column_of, out_start, out_head, edge_s, edge_m, time_s, length_m):
    """Fill ``time_s[k, c]``/``length_m[k, c]`` from ``sources[k]`` to the node of column ``c``.

    ``column_of[node]`` is the node's output column or -1. A binary heap with lazy deletion:
    a node may be pushed more than once, and only its first pop counts.
    """
    n = len(out_start) - 1
    key_s = np.empty(len(out_head) + 1)
    key_m = np.empty(len(out_head) + 1)
    heap_node = np.empty(len(out_head) + 1, dtype=np.int64)
    best_s = np.empty(n)
    best_m = np.empty(n)
    settled = np.empty(n, dtype=np.bool_)
    for k in range(len(sources)):
        best_s[:] = np.inf
        best_m[:] = np.inf
        settled[:] = False
        source = sources[k]
        best_s[source] = 0.0
        best_m[source] = 0.0
        key_s[0] = 0.0
        key_m[0] = 0.0
        heap_node[0] = source
        size = 1
        while size > 0:
            u = heap_node[0]
            u_s = key_s[0]
            u_m = key_m[0]
            size -= 1
            if size > 0:
                key_s[0] = key_s[size]
                key_m[0] = key_m[size]
                heap_node[0] = heap_node[size]
                _sift_down(key_s, key_m, heap_node, size, 0)
            if settled[u]:
                continue
            settled[u] = True
            for e in range(out_start[u], out_start[u + 1]):
                v = out_head[e]
                if settled[v]:
                    continue
                t = u_s + edge_s[e]
                m = u_m + edge_m[e]
                if t < best_s[v] or (t == best_s[v] and m < best_m[v]):
                    best_s[v] = t
                    best_m[v] = m
                    i = size  # push v, sifting up
                    size += 1
                    while i > 0:
                        parent = (i - 1) >> 1
                        if t < key_s[parent] or (t == key_s[parent] and m < key_m[parent]):
                            key_s[i] = key_s[parent]
                            key_m[i] = key_m[parent]
                            heap_node[i] = heap_node[parent]
                            i = parent
                        else:
                            break
                    key_s[i] = t
                    key_m[i] = m
                    heap_node[i] = v
        for node in range(n):
            column = column_of[node]
            if column >= 0:
                time_s[k, column] = best_s[node]
                length_m[k, column] = best_m[node]


def fastest_paths(
    graph: GraphArrays,
    sources: NDArray[np.intp],
    targets: NDArray[np.intp],
    *,
    threads: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fastest time (s) and its length (m) from each source node to each target node (positions).

    Returns two ``len(sources) x len(targets)`` arrays, ``inf`` where there is no path. Uses
    ``threads`` threads (default: the cores available), each taking a block of sources.
    """
    n = len(graph.node_ids)
    sources = np.asarray(sources, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if len(sources) and (sources.min() < 0 or sources.max() >= n):
        raise IndexError(f"source node positions must lie in 0..{n - 1}")
    if len(targets) and (targets.min() < 0 or targets.max() >= n):
        raise IndexError(f"target node positions must lie in 0..{n - 1}")
    column_of = np.full(n, -1, dtype=np.int64)
    column_of[targets] = np.arange(len(targets))
    time_s = np.empty((len(sources), len(targets)))
    length_m = np.empty_like(time_s)
    if not len(sources) or not len(targets):
        return time_s, length_m
    arrays = (column_of, graph.out_start, graph.pair_v, graph.pair_time_s, graph.pair_length_m)
    workers = max(1, min(threads or threads_available(), len(sources) // SOURCES_PER_THREAD))
    if workers == 1:
        _search(sources, *arrays, time_s, length_m)
        return time_s, length_m
    bounds = np.linspace(0, len(sources), workers + 1).astype(int)
    blocks = [slice(start, stop) for start, stop in itertools.pairwise(bounds.tolist())]
    # A pool per call, not a module-level one: a pool's threads do not survive a fork, and the
    # solver and the service both fork.
    with ThreadPoolExecutor(workers, thread_name_prefix="fastest-paths") as pool:
        searches = [pool.submit(_search, sources[b], *arrays, time_s[b], length_m[b]) for b in blocks]
        for search in searches:
            search.result()
    return time_s, length_m


def warm_up() -> None:
    """Compile the search now (about 1.5 s; 0.3 s from numba's disk cache) rather than in the
    first matrix request."""
    one = np.zeros(1, dtype=np.int64)
    _search(one, one, np.zeros(2, dtype=np.int64), one, np.zeros(1), np.zeros(1), np.empty((1, 1)), np.empty((1, 1)))
