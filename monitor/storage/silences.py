"""The silences store: rows of ``silences`` in, frozen :class:`Silence` records out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.models import SilenceRow


@dataclass(frozen=True)
class Silence:
    id: int
    matcher: dict[str, Any]  # {"topic": ..., "rule": ..., "severity": ...}, each optional
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime

    def state(self, now: datetime) -> str:
        """``active``, ``pending`` (starts later) or ``expired``."""
        return "expired" if self.ends_at <= now else ("pending" if self.starts_at > now else "active")


def _record(row: SilenceRow) -> Silence:
    return Silence(row.id, dict(row.matcher), row.starts_at, row.ends_at, row.reason, row.created_by, row.created_at)


def add(s: Session, matcher: dict[str, Any], starts_at: datetime, ends_at: datetime, reason: str, created_by: str,
        created_at: datetime) -> Silence:
    row = SilenceRow(matcher=matcher, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=created_by,
                     created_at=created_at)
    s.add(row)
    s.flush()
    return _record(row)


def get(s: Session, silence_id: int) -> Silence | None:
    row = s.get(SilenceRow, silence_id)
    return _record(row) if row is not None else None


def listing(s: Session, now: datetime, *, include_expired: bool = False) -> list[Silence]:
    """Latest ending first; without ``include_expired`` only those not yet over at ``now``."""
    stmt = select(SilenceRow).order_by(SilenceRow.ends_at.desc(), SilenceRow.id.desc())
    if not include_expired:
        stmt = stmt.where(SilenceRow.ends_at > now)
    return [_record(r) for r in s.scalars(stmt)]


def active(s: Session, now: datetime) -> list[Silence]:
    """The silences in force at ``now``, oldest first."""
    rows = s.scalars(select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
                     .order_by(SilenceRow.id))
    return [_record(r) for r in rows]


def end(s: Session, silence_id: int, now: datetime) -> Silence | None:
    """End the silence at ``now`` (None: no such silence)."""
    row = s.get(SilenceRow, silence_id)
    if row is None:
        return None
    row.ends_at, row.starts_at = now, min(row.starts_at, now)
    s.flush()
    return _record(row)
