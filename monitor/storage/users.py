"""The users store: rows of ``users`` (people who log in to the web console) in, frozen records out.

Password hashes stay in the store's records only as opaque strings; hashing and checking them is
:mod:`monitor.app.service.users`' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.models import UserRow


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    role: str
    created_at: datetime
    disabled: bool
    last_login_at: datetime | None
    password_hash: str


def _record(row: UserRow) -> UserRecord:
    return UserRecord(row.id, row.name, row.role, row.created_at, bool(row.disabled), row.last_login_at,
                      row.password_hash)


def add(s: Session, name: str, password_hash: str, role: str, created_at: datetime) -> UserRecord:
    row = UserRow(name=name, password_hash=password_hash, role=role, created_at=created_at, disabled=False)
    s.add(row)
    s.flush()
    return _record(row)


def by_name(s: Session, name: str) -> UserRecord | None:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    return _record(row) if row is not None else None


def get(s: Session, user_id: int) -> UserRecord | None:
    row = s.get(UserRow, user_id)
    return _record(row) if row is not None else None


def listing(s: Session) -> list[UserRecord]:
    return [_record(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def update(s: Session, name: str, **values) -> UserRecord | None:
    """Set ``role``, ``disabled``, ``password_hash`` or ``last_login_at``; None when there is no such user."""
    unknown = set(values) - {"role", "disabled", "password_hash", "last_login_at"}
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        return None
    for key, value in values.items():
        setattr(row, key, value)
    s.flush()
    return _record(row)
