"""Shared fixtures: a migrated database on SQLite and (when configured) PostgreSQL.

PostgreSQL runs only when ``MONITOR_TEST_DATABASE_URL`` is set, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``. Each test gets a fresh
schema (selected with libpq ``options=-csearch_path=...``), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.storage import Database

PG_ENV = "MONITOR_TEST_DATABASE_URL"


def _sqlite_db(tmp_path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()


def _postgres_db(base_url: str) -> Iterator[Database]:
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


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Iterator[Database]:
    """A migrated :class:`monitor.storage.Database`, empty, private to this test."""
    if request.param == "sqlite":
        yield from _sqlite_db(tmp_path)
        return
    base_url = os.environ.get(PG_ENV)
    if not base_url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    yield from _postgres_db(base_url)
