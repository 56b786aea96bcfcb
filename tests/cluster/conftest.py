"""The cluster suite (issue 14): real PostgreSQL, real `monitor run` nodes, kill -9 included.

Runs only when ``MONITOR_TEST_DATABASE_URL`` names a PostgreSQL database (a cluster is PostgreSQL
only); each test gets its own schema, dropped afterwards. Every node loads one sentiment model
built once for the session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from monitor.storage import Database
from tests.conftest import PG_ENV, _postgres_db


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get(PG_ENV, "").startswith("postgresql"):
        return
    skip = pytest.mark.skip(reason=f"the cluster suite needs PostgreSQL: set {PG_ENV}")
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    from nlp.train import default_model

    return default_model(tmp_path_factory.mktemp("model"))[1]


@pytest.fixture
def pg(tmp_path) -> Iterator[Database]:
    """A migrated PostgreSQL database in a schema of its own (``db.url`` selects it)."""
    yield from _postgres_db(os.environ[PG_ENV])
