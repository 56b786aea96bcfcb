"""Storage: SQLAlchemy 2.x models, Alembic migrations and short transactions.

SQLite (WAL mode) by default, PostgreSQL via ``postgresql+psycopg://...``.
"""

from monitor.storage.database import Database

__all__ = ["Database"]
