"""The incidents store: rows of ``incidents`` and ``incident_steps`` in, frozen records out.

Records carry the column names of the ORM rows (``Incident.status``, ``IncidentStep.due_at`` …), so
readers use them by attribute as before. Writes take the incident's id and the changed fields; what
to change is decided by :mod:`alerts.incident_policy` and the staff desk (:mod:`alerts.incident_desk`).
The timeline (``incident_events``) is :mod:`monitor.storage.timeline`. The database keeps at most one
active (not resolved) incident per group (a partial unique index, see the models).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import case, func, select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from monitor.storage.models import IncidentRow, IncidentStepRow
from monitor.storage.timeline import IncidentEvent

__all__ = ["Incident", "IncidentEvent", "IncidentStep", "NewStep"]


@dataclass(frozen=True)
class Incident:
    id: int
    group_key: str  # the topic, "topic|rule" or "source|rule": at most one active incident each
    topic: str
    rule: str
    rule_type: str
    severity: str  # a Severity value: IV … I
    status: str  # open | acknowledged | resolved
    title: str
    reason: str
    numbers: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    acked_at: datetime | None = None
    acked_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    last_notified_at: datetime | None = None
    plan: str | None = None
    assignee: str | None = None
    last_signal_at: datetime | None = None
    reopened_count: int = 0
    escalation_step: int = -1  # of the current round, last notified (-1: none yet)
    escalation_round: int = 0
    next_escalation_at: datetime | None = None
    signals: dict[str, str] | None = None  # rule -> severity of the rules firing into it (None: older row)
    summary: dict[str, Any] | None = None  # alerts.crisis_summary.CrisisSummary, JSON form


@dataclass(frozen=True)
class IncidentStep:
    """One step of the response plan attached to an incident (1-based ``position``)."""

    id: int
    incident_id: int
    position: int
    plan: str
    title: str
    owner: str
    due_at: datetime | None
    reply: str | None
    status: str  # pending | done | skipped
    done_at: datetime | None = None
    done_by: str | None = None


@dataclass(frozen=True)
class NewStep:
    title: str
    owner: str
    due_at: datetime | None = None
    reply: str | None = None


_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))
_WRITABLE = frozenset(_INCIDENT_FIELDS) - {"id"}
_STEP_FIELDS = tuple(f.name for f in fields(IncidentStep))


def _incident(row: IncidentRow) -> Incident:
    values = {name: getattr(row, name) for name in _INCIDENT_FIELDS}
    values["numbers"] = dict(values["numbers"] or {})
    values["reopened_count"] = values["reopened_count"] or 0
    return Incident(**values)


def _step(row: IncidentStepRow) -> IncidentStep:
    return IncidentStep(**{name: getattr(row, name) for name in _STEP_FIELDS})


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _WRITABLE
    if unknown:
        raise ValueError(f"not incident fields: {', '.join(sorted(unknown))}")
    return changes


# -- incidents -----------------------------------------------------------------------------
def get(s: Session, incident_id: int) -> Incident | None:
    row = s.get(IncidentRow, incident_id)
    return None if row is None else _incident(row)


def active(s: Session, group_key: str) -> Incident | None:
    """The group's incident that is not resolved yet, if any."""
    row = s.scalars(select(IncidentRow).where(IncidentRow.group_key == group_key,
                                              IncidentRow.status != "resolved")).first()
    return None if row is None else _incident(row)


def open_incidents(s: Session) -> list[Incident]:
    """Every incident not resolved yet (open or acknowledged), oldest first."""
    rows = s.scalars(select(IncidentRow).where(IncidentRow.status != "resolved").order_by(IncidentRow.id))
    return [_incident(r) for r in rows]


def last_resolved(s: Session, group_key: str) -> Incident | None:
    """The group's most recently resolved incident, if any."""
    row = s.scalars(select(IncidentRow).where(IncidentRow.group_key == group_key, IncidentRow.status == "resolved",
                                              IncidentRow.resolved_at.is_not(None))
                    .order_by(IncidentRow.resolved_at.desc(), IncidentRow.id.desc()).limit(1)).first()
    return None if row is None else _incident(row)


def create(s: Session, **values: Any) -> Incident:
    """Insert an incident (every field but ``id``); a second active one in its group is refused by the database."""
    row = IncidentRow(**_checked(values))
    s.add(row)
    s.flush()
    return _incident(row)


def update(s: Session, incident_id: int, **changes: Any) -> Incident:
    row = s.get(IncidentRow, incident_id)
    if row is None:
        raise LookupError(f"no incident #{incident_id}")
    for name, value in _checked(changes).items():
        setattr(row, name, value)
    s.flush()
    return _incident(row)


def update_if(s: Session, incident_id: int, expected: dict[str, Any], **changes: Any) -> bool:
    """Apply ``changes`` only while the incident still has the ``expected`` values (one conditional UPDATE:
    another process — the daemon paging a step — may have moved it since it was read)."""
    table = IncidentRow.__table__
    stmt = (sa_update(table).where(table.c.id == incident_id,
                                   *(table.c[name] == value for name, value in _checked(expected).items()))
            .values(**_checked(changes)))
    return s.execute(stmt).rowcount == 1


def listing(s: Session, status: str | None = None, since: datetime | None = None) -> list[Incident]:
    """Newest first; optionally only one status, or only those opened at or after ``since``."""
    stmt = select(IncidentRow).order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
    if status:
        stmt = stmt.where(IncidentRow.status == status)
    if since:
        stmt = stmt.where(IncidentRow.opened_at >= since)
    return [_incident(r) for r in s.scalars(stmt)]


def _filtered(stmt: Any, *, severity: str | None, topic: str | None, since: datetime | None) -> Any:
    if severity:
        stmt = stmt.where(IncidentRow.severity == severity)
    if topic:
        stmt = stmt.where(IncidentRow.topic == topic)
    if since:
        stmt = stmt.where(IncidentRow.opened_at >= since)
    return stmt


def queue(s: Session, *, status: str | None = None, severity: str | None = None, topic: str | None = None,
          since: datetime | None = None, limit: int = 50, offset: int = 0) -> list[Incident]:
    """One page of the console's queue, in one query: active (open or acknowledged) incidents first, then
    resolved ones, each newest first; filtered by exact status, severity, topic, and opened at or after ``since``."""
    resolved_last = case((IncidentRow.status == "resolved", 1), else_=0)
    stmt = select(IncidentRow).order_by(resolved_last, IncidentRow.opened_at.desc(), IncidentRow.id.desc())
    if status:
        stmt = stmt.where(IncidentRow.status == status)
    stmt = _filtered(stmt, severity=severity, topic=topic, since=since).limit(limit).offset(offset)
    return [_incident(r) for r in s.scalars(stmt)]


def status_counts(s: Session, *, severity: str | None = None, topic: str | None = None,
                  since: datetime | None = None) -> dict[str, int]:
    """Number of incidents per status under the queue's other filters."""
    stmt = select(IncidentRow.status, func.count()).group_by(IncidentRow.status)
    return dict(s.execute(_filtered(stmt, severity=severity, topic=topic, since=since)).all())


def topics(s: Session) -> list[str]:
    """Every topic that has had an incident, sorted."""
    return list(s.scalars(select(IncidentRow.topic).distinct().order_by(IncidentRow.topic)))


def counts(s: Session) -> dict[tuple[str, str], int]:
    """Number of incidents per (severity, status)."""
    stmt = select(IncidentRow.severity, IncidentRow.status, func.count()).group_by(IncidentRow.severity,
                                                                                  IncidentRow.status)
    return {(severity, status): n for severity, status, n in s.execute(stmt)}


def escalation_due(s: Session, now: datetime) -> list[Incident]:
    """Open (unacknowledged) incidents whose next page is due at ``now``."""
    rows = s.scalars(select(IncidentRow).where(IncidentRow.status == "open", IncidentRow.next_escalation_at <= now)
                     .order_by(IncidentRow.id))
    return [_incident(r) for r in rows]


def next_escalation_at(s: Session) -> datetime | None:
    """When the earliest open incident's next page falls due (None: none scheduled)."""
    return s.scalar(select(func.min(IncidentRow.next_escalation_at)).where(IncidentRow.status == "open"))


# -- plan steps -------------------------------------------------------------------------------
def steps(s: Session, incident_id: int, *, pending: bool = False, limit: int | None = None) -> list[IncidentStep]:
    """The incident's plan steps in order; ``pending``: only those not done or skipped."""
    stmt = select(IncidentStepRow).where(IncidentStepRow.incident_id == incident_id)
    if pending:
        stmt = stmt.where(IncidentStepRow.status == "pending")
    stmt = stmt.order_by(IncidentStepRow.position).limit(limit)
    return [_step(r) for r in s.scalars(stmt)]


def step_count(s: Session, incident_id: int) -> int:
    return s.scalar(select(func.count()).select_from(IncidentStepRow)
                    .where(IncidentStepRow.incident_id == incident_id)) or 0


def append_steps(s: Session, incident_id: int, plan: str, new: Sequence[NewStep]) -> list[IncidentStep]:
    """Add a plan's steps after the incident's existing ones (positions continue), all pending."""
    first = step_count(s, incident_id) + 1
    rows = [IncidentStepRow(incident_id=incident_id, position=first + i, plan=plan, title=st.title, owner=st.owner,
                            due_at=st.due_at, reply=st.reply, status="pending") for i, st in enumerate(new)]
    s.add_all(rows)
    s.flush()
    return [_step(r) for r in rows]


def set_step(s: Session, incident_id: int, position: int, status: str, done_at: datetime | None,
             done_by: str | None) -> IncidentStep | None:
    """Set one step's status and who did it (None: the incident has no such step)."""
    row = s.scalars(select(IncidentStepRow).where(IncidentStepRow.incident_id == incident_id,
                                                  IncidentStepRow.position == position)).first()
    if row is None:
        return None
    row.status, row.done_at, row.done_by = status, done_at, done_by
    s.flush()
    return _step(row)
