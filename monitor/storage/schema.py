"""Is the schema current? — answered without Alembic.

Every command opens its database "migrated"; importing and running Alembic to find nothing to do
cost ~0.2 s of each ``monitor incidents list``. Here the revision stored in ``alembic_version`` is
compared with the head read from the migration files themselves; only when they differ (or when
either cannot be read plainly) does the caller run :meth:`Database.migrate`, i.e. Alembic, which
stays the one authority on upgrading.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from monitor.storage.database import MIGRATIONS, Database

_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def head_revision(versions: Path = MIGRATIONS / "versions") -> str | None:
    """The id of the newest migration in ``versions``; None unless the files name exactly one head."""
    return _head(versions)


@cache
def _head(versions: Path) -> str | None:
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None  # not the plain form Alembic writes: let Alembic read it
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update((down,) if isinstance(down, str) else tuple(down or ()))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None for a database Alembic has not stamped (or several heads)."""
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no such table: a new database
        return None
    return rows[0] if len(rows) == 1 else None


def is_current(db: Database) -> bool:
    """True when ``db`` is at the newest revision, so that ``db.migrate()`` would do nothing."""
    head = head_revision()
    return head is not None and current_revision(db) == head
