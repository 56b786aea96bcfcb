"""Storage: engine, SQLAlchemy models, Alembic migrations and one small store module per aggregate.

Only this package runs SQL. A store (``monitor.storage.silences``, ``…incidents``, ``…deliveries`` …) is a
module of functions that take a :class:`Session` — the unit of work opened by ``Database.session()`` —
and return frozen records, never ORM rows. SQLite (WAL mode) by default, PostgreSQL via
``postgresql+psycopg://...``.
"""

from sqlalchemy.orm import Session

from monitor.storage.database import Database

__all__ = ["Database", "Session"]
