"""The job queue's tables (procrastinate's, PostgreSQL only) as the rest of the storage layer sees them.

procrastinate owns its schema; :func:`ensure_schema` installs it once per database, under the same
advisory lock as the schema migrations, so that daemons starting together (a rolling upgrade) do it
once. :func:`queued` tells which work units already have a job waiting or running, so the dispatcher
does not defer them again.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import text
from sqlalchemy.engine import make_url

from monitor.storage.database import MIGRATION_LOCK, Database


def conninfo(url: str, keepalive_s: int) -> str:
    """libpq's connection string for SQLAlchemy's ``url``, with TCP keepalives: a node cut off from the
    database notices (and PostgreSQL drops its connections) within seconds, not hours."""
    u = make_url(url).set(drivername="postgresql")
    query = {"keepalives": "1", "keepalives_idle": str(keepalive_s), "keepalives_interval": str(keepalive_s),
             "keepalives_count": "3", "tcp_user_timeout": "10000", "connect_timeout": "10",
             "application_name": "yuqing-sentinel"} | dict(u.query)
    return u.set(query=query).render_as_string(hide_password=False)


def session_limits(seconds: int):
    """The pool's ``configure`` callback: the limits of :meth:`Database.limit_sessions` on the job
    queue's own connections (a worker cut off mid-transaction releases its job rows' locks)."""
    async def configure(conn) -> None:
        await conn.execute(f"SET idle_in_transaction_session_timeout = '{int(seconds)}s'")
        await conn.execute(f"SET lock_timeout = '{int(seconds)}s'")
        await conn.commit()

    return configure


def ensure_schema(db: Database, schema_sql: str) -> bool:
    """Install the job queue's schema if it is missing; True if it was installed now."""
    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        cursor = conn.connection.cursor()  # the driver's own: no parameters, so no placeholder parsing
        try:
            cursor.execute(schema_sql)
        finally:
            cursor.close()
        return True


def queued(db: Database, locks: Iterable[str]) -> set[str]:
    """Of the queueing locks ``locks``, those held by a job waiting or running."""
    locks = list(locks)
    if not locks:
        return set()
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT queueing_lock FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
                                 "AND queueing_lock = ANY(:locks)"), {"locks": locks})
        return {r[0] for r in rows}


def running(db: Database) -> dict[str, int]:
    """Jobs by status (todo, doing, failed …), for status pages."""
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status"))
        return {r[0]: r[1] for r in rows}
