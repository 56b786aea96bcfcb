"""What every service needs: the config, the database (opened and migrated on first use), the timezone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from monitor.app.config import database_url
from monitor.core.configtypes import parse_duration
from monitor.core.errors import UsageError
from monitor.storage import Database, schema


class Context:
    """One config and its database; cheap to build. The config may be given or loaded on first use
    (``loader``: a command that needs none, e.g. training on files, never reads a broken one), and
    the database is opened and migrated on first use (a request refused by validation never touches it).
    """

    def __init__(self, config: Any = None, db: Database | None = None, *, loader: Callable[[], Any] | None = None):
        if config is None and loader is None:
            raise ValueError("Context needs a config or a loader")
        self._config, self._loader, self._db = config, loader, db

    @property
    def config(self) -> Any:
        if self._config is None:
            self._config = self._loader()
        return self._config

    @property
    def db(self) -> Database:
        if self._db is None:
            db = Database(database_url(self.config))
            if not schema.is_current(db):  # Alembic only when there is something to do: it costs ~0.2 s
                db.migrate()
            self._db = db
        return self._db

    @property
    def tz(self) -> str:
        """The config's timezone: people's times (``--until 18:00``, report days) are read and shown in it."""
        return self.config.timezone


def local_time(dt: datetime | None, tz: str, fmt: str = "%m-%d %H:%M:%S") -> str:
    """``dt`` as the clock in ``tz`` shows it (``-`` for None) — in messages and tables alike."""
    return dt.astimezone(ZoneInfo(tz)).strftime(fmt) if dt else "-"


def duration(value: str, option: str, example: str = "2h") -> timedelta:
    """Parse a duration given as ``option``; a bad one is a :class:`UsageError` naming the option."""
    try:
        return parse_duration(value)
    except Exception:  # noqa: BLE001 - parse_duration raises ValueError or pydantic errors alike
        raise UsageError(f'{option}: expected a duration like "{example}", got {value!r}') from None


def day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: expected a date like 2026-03-15, got {value!r}") from None


def today(tz: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(tz)).date()
