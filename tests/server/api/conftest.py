"""The API tests' server checks every success answer it gives against what /api/openapi.json declares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app, prepare_database
from server.db import Database
from server.demo import seed_demo
from server.settings import Settings

from ...support.answers import AnswerChecker


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    """A real server on a free port, seeded with the demo partnership, whose success answers are checked
    against the OpenAPI document when the test ends: a handler that answers other than it declares with
    ``@answers`` fails the test that saw it."""
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    await seed_demo(database)
    checker = AnswerChecker()
    app = create_app(settings, database=database)
    app.middlewares.insert(0, checker.middleware)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    yield client
    problems = checker.problems(client.app)
    await client.close()
    assert not problems, "answers that differ from the OpenAPI document:\n" + "\n".join(dict.fromkeys(problems))
