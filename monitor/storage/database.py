"""Engine, sessions and schema migrations."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# PostgreSQL advisory-lock keys (any fixed 64-bit numbers): schema upgrades, the job queue's schema
MIGRATION_LOCK = 0x59_51_53_42_01  # "YQSB" 1


def _describe(url: str) -> str:
    """The URL without a password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by the caller
        return "<invalid database URL>"


class Database:
    """One database: ``Database(url).migrate()`` then ``with db.session() as s: ...``.

    Transactions are short: each ``session()`` block commits on success and
    rolls back on error.
    """

    def __init__(self, url: str):
        self.url = url
        self.display_url = _describe(url)
        try:
            parsed = make_url(url)
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"invalid database URL {url!r}: {exc}") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict = {"future": True}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            # A database that stops answering (a network partition, a host gone) fails a query within
            # seconds instead of hanging it for the kernel's default of minutes: a daemon then sees the
            # error, and a cluster node stops leading the rules before another may take over.
            kwargs["connect_args"] = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 5,
                                      "keepalives_interval": 2, "keepalives_count": 3, "tcp_user_timeout": 10_000}
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StorageError(f"cannot use database {self.display_url}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``; Alembic is not even
        imported when the schema is already current)."""
        from monitor.storage.schema import is_current

        if is_current(self):
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if not self.is_sqlite:  # several daemons starting at once (a rolling upgrade): one migrates,
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})  # others wait
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot migrate database {self.display_url}: {exc.__class__.__name__}: {exc}") from exc

    def limit_sessions(self, seconds: int) -> None:
        """PostgreSQL: a transaction left open (its client cut off mid-transaction) is ended by the
        server after ``seconds``, and a lock is waited for at most that long — so a node cut off while
        holding a row lock cannot hold up the others for the kernel's keepalive of hours. For new
        connections: the pool is emptied."""
        if self.is_sqlite:
            return

        def _limits(dbapi_conn, _record) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute(f"SET idle_in_transaction_session_timeout = '{int(seconds)}s'")
            cursor.execute(f"SET lock_timeout = '{int(seconds)}s'")
            cursor.close()
            dbapi_conn.commit()

        event.listen(self.engine, "connect", _limits)
        self.engine.dispose()

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StorageError(f"database error on {self.display_url}: {exc.__class__.__name__}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
