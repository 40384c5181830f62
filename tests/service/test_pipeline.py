"""The one pipeline (request -> matrices -> problem -> solve -> document) and its matrix cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing.matrix import MatrixCache
from routing.model import TravelMatrix
from service.config import Settings
from service.networks import NetworkRegistry
from service.pipeline import document_of, prepare, solve_prepared
from service.schemas import PlanRequest
from tests.service.test_api_network import helsinki_request

pytestmark = pytest.mark.slow


def test_a_days_matrices_are_computed_once_and_kept_on_disk_for_the_next_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}", workers=0)
    request = PlanRequest.model_validate(helsinki_request())
    first = prepare(request, NetworkRegistry(settings))
    cached = sorted((tmp_path / "cache" / "matrices").glob("matrix-*.npz"))
    assert len(cached) == 2  # one per profile the fleet uses: walk and drive
    # Another process (a fresh registry: nothing in memory) reads them instead of routing again.
    stamps = [f.stat().st_mtime_ns for f in cached]
    again = prepare(request, NetworkRegistry(settings))
    assert [f.stat().st_mtime_ns for f in cached] == stamps
    for profile in ("walk", "drive"):
        assert np.array_equal(first.problem.matrices[profile].durations_s, again.problem.matrices[profile].durations_s)


def test_the_pipeline_draws_each_used_route_along_the_streets(tmp_path: Path) -> None:
    from routing.solver import solve

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}", workers=0)
    prepared = prepare(PlanRequest.model_validate(helsinki_request()), NetworkRegistry(settings))
    document = document_of(prepared, solve_prepared(prepared, solve, time_limit_s=3))
    assert document.routes, document.unassigned
    assert all(r.geometry is not None and len(r.geometry.coordinates) >= 2 for r in document.routes)


def test_the_disk_cache_keeps_at_most_its_number_of_files(tmp_path: Path) -> None:
    cache = MatrixCache(tmp_path, max_items=1, max_files=3)
    for i in range(5):
        cache.put(f"key{i}", TravelMatrix(np.full((2, 2), float(i)), np.zeros((2, 2))))
    assert len(list(tmp_path.glob("matrix-*.npz"))) == 3
    assert cache.get("key0") is None  # the oldest went first
    hit = cache.get("key4")
    assert hit is not None and hit.durations_s[0, 0] == 4.0
