"""The cluster suite (issue 14): real PostgreSQL, real `monitor run` nodes, kill -9 included.

Runs only when ``MONITOR_TEST_DATABASE_URL`` names a PostgreSQL database (a cluster is PostgreSQL
only); each test gets its own schema, dropped afterwards. Every node loads one sentiment model
built once for the session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.storage import Database

PG_ENV = "MONITOR_TEST_DATABASE_URL"


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
    base_url = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(base_url, future=True)
    database: Database | None = None
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        database = Database(url.render_as_string(hide_password=False))
        database.migrate()
        yield database
    finally:
        if database is not None:
            database.dispose()
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()
