"""Property-based fuzzing of the whole REST API, driven by its own OpenAPI document: whatever a caller sends
to any operation, valid or not, the answer is never a 5xx."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from server.demo import DEMO_PASSWORD
from server.settings import Settings

from ...conftest import _start

# Each operation gets this many generated requests, valid and invalid: enough to find a crash in parsing
# (it took 5 to find each of the ones fixed with this test), few enough that all 50-odd operations take
# about a minute on a shared two-core machine.
EXAMPLES_PER_OPERATION = 12
REQUEST_TIMEOUT = 15  # seconds; a request that hangs fails the test instead of stalling the suite
# Logging out would revoke the token every later request carries, leaving only 401s to fuzz.
SKIPPED = {("POST", "/api/auth/logout")}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server on port 0 with the demo partnership, on an event loop in a thread of its own, since
    schemathesis calls the API synchronously. Yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-server", daemon=True)
    thread.start()
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "var"
    client = asyncio.run_coroutine_threadsafe(_start(Settings.load(environ={}, data_dir=data_dir, port=0)),
                                              loop).result(120)
    try:
        yield str(client.make_url("")).rstrip("/")
    finally:
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _with_small_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document, but each ``{…_id}`` path parameter one of the demo data's small ids or any string: the
    document's ids span the whole column, so random ones would rarely name a row and get past the lookup
    into the handlers behind it, and strings keep the id check itself fuzzed."""
    document = copy.deepcopy(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    parameter["schema"] = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 4},
                                                     {"type": "string"}]}
    return document


@pytest.fixture(scope="module")
def api(live_server: str) -> schemathesis.schemas.BaseSchema:
    """The API as /api/openapi.json describes it, called as the demo county doctor with a bearer token."""
    login = requests.post(f"{live_server}/api/auth/login", json={"username": "dr.li", "password": DEMO_PASSWORD},
                          timeout=REQUEST_TIMEOUT)
    login.raise_for_status()
    document = requests.get(f"{live_server}/api/openapi.json", timeout=REQUEST_TIMEOUT).json()
    config = SchemathesisConfig.from_dict({
        "base-url": live_server,
        "headers": {"Authorization": f"Bearer {login.json()['access_token']}"},
        "request-timeout": REQUEST_TIMEOUT,
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION},
        # Fuzzing only: the document has no examples, and the coverage phase's hundreds of boundary cases
        # per operation would take the suite many minutes.
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False},
                   "stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_dict(_with_small_ids(document), config=config).exclude(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SKIPPED)


def test_no_request_gets_a_server_error(api: schemathesis.schemas.BaseSchema) -> None:
    """Guards every operation against the class of bug fixed with it: bad input (huge numbers, deep JSON,
    other scripts' digits, ids past the columns, unreadable headers) answered with a 500 and a traceback
    instead of a 4xx that says what was wrong. Each operation is fuzzed on its own, so each gets its share of
    examples, and every operation's failure is listed, not just the first."""
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 40, "the document describes the whole API"
    for operation in operations:
        cases = st.sampled_from(list(GenerationMode)).flatmap(operation.as_strategy)

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (
                f"answered {response.status_code}: {response.text[:300]}\n"
                f"reproduce with: {case.as_curl_command()}")

        try:
            no_server_error()
        except AssertionError as failure:
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"{label}: {why}" for label, why in failures.items())
