"""The incident timeline (``incident_events``): every store or service that records what happened
to an incident writes its event here, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitor.storage.models import IncidentEventRow, IncidentRow


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
