"""The many-to-many search against scipy's and networkx's Dijkstra, on a real street network."""

from __future__ import annotations

import dataclasses
import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from routing.fastest_paths import fastest_paths
from routing.network import RoadNetwork


def test_times_equal_scipy_to_the_last_bit_and_lengths_follow_the_fastest_path(
    aguascalientes_drive: RoadNetwork,
) -> None:
    a = aguascalientes_drive.arrays
    sources = np.arange(0, len(a.node_ids), 7)
    targets = np.arange(len(a.node_ids))
    time_s, length_m = fastest_paths(a, sources, targets)
    assert np.array_equal(time_s, dijkstra(a.csr_time_s, directed=True, indices=sources))
    # The length driven along networkx's fastest path (one edge per node pair, as routing uses).
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(zip(a.pair_u.tolist(), a.pair_v.tolist(), a.pair_time_s.tolist(), strict=True))
    length_of = dict(zip(zip(a.pair_u.tolist(), a.pair_v.tolist(), strict=True), a.pair_length_m.tolist(), strict=True))
    for row, source in enumerate(sources[:20].tolist()):
        _, paths = nx.single_source_dijkstra(graph, source)
        for target, path in paths.items():
            driven = sum(length_of[edge] for edge in itertools.pairwise(path))
            assert length_m[row, target] == pytest.approx(driven, abs=1e-6)


def test_columns_follow_the_targets_in_the_order_given(aguascalientes_drive: RoadNetwork) -> None:
    a = aguascalientes_drive.arrays
    sources = np.array([5, 3, 400])
    targets = np.array([90, 2, 17, 5])
    time_s, _ = fastest_paths(a, sources, targets)
    assert np.array_equal(time_s, dijkstra(a.csr_time_s, directed=True, indices=sources)[:, targets])
    assert time_s[0, 3] == 0.0  # node 5 to itself


def test_threads_split_the_sources_without_changing_anything(aguascalientes_drive: RoadNetwork) -> None:
    a = aguascalientes_drive.arrays
    sources = np.arange(len(a.node_ids))
    targets = np.arange(0, len(a.node_ids), 3)
    one = fastest_paths(a, sources, targets, threads=1)
    several = fastest_paths(a, sources, targets, threads=3)
    assert np.array_equal(one[0], several[0]) and np.array_equal(one[1], several[1])


def test_unreachable_nodes_are_infinitely_far(aguascalientes_drive: RoadNetwork) -> None:
    # Three nodes: 0 -> 1 costs 2 s and 30 m; nothing reaches 2.
    tiny = dataclasses.replace(
        aguascalientes_drive.arrays,
        node_ids=np.array([10, 11, 12]),
        out_start=np.array([0, 1, 1, 1]),
        pair_v=np.array([1]),
        pair_time_s=np.array([2.0]),
        pair_length_m=np.array([30.0]),
    )
    time_s, length_m = fastest_paths(tiny, np.array([0, 2]), np.array([0, 1, 2]))
    assert time_s.tolist() == [[0.0, 2.0, np.inf], [np.inf, np.inf, 0.0]]
    assert length_m.tolist() == [[0.0, 30.0, np.inf], [np.inf, np.inf, 0.0]]


def test_equally_fast_paths_drive_the_shorter(aguascalientes_drive: RoadNetwork) -> None:
    # 0 -> 1 -> 3 and 0 -> 2 -> 3 both take 10 s; the second is 40 m shorter.
    tiny = dataclasses.replace(
        aguascalientes_drive.arrays,
        node_ids=np.array([10, 11, 12, 13]),
        out_start=np.array([0, 2, 3, 4, 4]),
        pair_v=np.array([1, 2, 3, 3]),
        pair_time_s=np.array([5.0, 5.0, 5.0, 5.0]),
        pair_length_m=np.array([60.0, 50.0, 60.0, 30.0]),
    )
    time_s, length_m = fastest_paths(tiny, np.array([0]), np.array([3]))
    assert time_s[0, 0] == 10.0 and length_m[0, 0] == 80.0


@pytest.mark.parametrize(("sources", "targets"), [([-1], [0]), ([0], [10**9])])
def test_node_positions_outside_the_network_are_rejected(
    aguascalientes_drive: RoadNetwork, sources: list[int], targets: list[int]
) -> None:
    with pytest.raises(IndexError, match="node positions"):
        fastest_paths(aguascalientes_drive.arrays, np.array(sources), np.array(targets))
