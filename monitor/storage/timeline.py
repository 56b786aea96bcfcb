"""The incident timeline (``incident_events``): every store or service that records what happened
to an incident writes its event here, in the caller's transaction, and reads it back as records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.models import IncidentEventRow, IncidentRow


@dataclass(frozen=True)
class IncidentEvent:
    """One line of an incident's timeline (opened, evidence, notified, acknowledged, note, resolved …)."""

    id: int
    incident_id: int
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def add_event(s: Session, incident_id: int, at: datetime, kind: str, actor: str, message: str,
              data: dict[str, Any] | None = None) -> None:
    s.add(IncidentEventRow(incident_id=incident_id, at=at, kind=kind, actor=actor, message=message, data=data or {}))


def add_event_if_exists(s: Session, incident_id: int | None, at: datetime, kind: str, actor: str, message: str,
                        data: dict[str, Any] | None = None) -> bool:
    """Record the event when the incident exists (a page may outlive a deleted incident)."""
    if incident_id is None or s.get(IncidentRow, incident_id) is None:
        return False
    add_event(s, incident_id, at, kind, actor, message, data)
    return True


def events(s: Session, incident_id: int) -> list[IncidentEvent]:
    """The incident's timeline in the order it was written."""
    rows = s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id)
                     .order_by(IncidentEventRow.id))
    return [IncidentEvent(r.id, r.incident_id, r.at, r.kind, r.actor, r.message, dict(r.data or {})) for r in rows]
