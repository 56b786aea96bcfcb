"""What on-call staff do with incidents: acknowledge, note, work plan steps, assign, resolve —
each an event on the incident's timeline with the actor — and read them back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.domain import Mention
from monitor.core.errors import UsageError
from monitor.storage import Database
from monitor.storage.models import IncidentEventRow, IncidentRow, IncidentStepRow
from monitor.storage.repo import mentions_by_ids

STATUSES = ("open", "acknowledged", "resolved")
STEP_STATUSES = ("done", "skipped", "pending")


def add_event(session: Session, incident: IncidentRow, at: datetime, kind: str, actor: str, message: str,
              data: dict | None = None) -> None:
    session.add(IncidentEventRow(incident_id=incident.id, at=at, kind=kind, actor=actor, message=message,
                                 data=data or {}))


@dataclass(frozen=True)
class IncidentView:
    incident: IncidentRow
    events: list[IncidentEventRow]
    steps: list[IncidentStepRow]
    mentions: list[Mention]  # cited as evidence, first cited first


class IncidentDesk:
    def __init__(self, db: Database, *, tz: str = "Asia/Shanghai"):
        self.db = db
        self.tz = tz

    def _get(self, s: Session, incident_id: int) -> IncidentRow:
        incident = s.get(IncidentRow, incident_id)
        if incident is None:
            raise UsageError(f"no incident #{incident_id}")
        return incident

    def _open_one(self, s: Session, incident_id: int, doing: str) -> IncidentRow:
        incident = self._get(s, incident_id)
        if incident.status == "resolved":
            raise UsageError(f"incident #{incident_id} is resolved; cannot {doing}")
        return incident

    def acknowledge(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> IncidentRow:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            if incident.status != "open":
                raise UsageError(f"incident #{incident_id} is {incident.status}, only open incidents can be acknowledged")
            incident.status, incident.acked_at, incident.acked_by, incident.updated_at = "acknowledged", now, actor, now
            incident.next_escalation_at = None  # somebody is on it: stop escalating
            add_event(s, incident, now, "acknowledged", actor, note or "已确认，处理中")
            return incident

    def resolve(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> IncidentRow:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            if incident.status == "resolved":
                raise UsageError(f"incident #{incident_id} is already resolved")
            incident.status, incident.resolved_at, incident.resolved_by, incident.updated_at = "resolved", now, actor, now
            incident.next_escalation_at = None
            add_event(s, incident, now, "resolved", actor, note or "已处置完毕")
            return incident

    def add_note(self, incident_id: int, actor: str, now: datetime, text: str) -> None:
        if not text.strip():
            raise UsageError("a note needs some text")
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            incident.updated_at = now
            add_event(s, incident, now, "note", actor, text)

    def assign(self, incident_id: int, person: str, actor: str, now: datetime) -> None:
        with self.db.session() as s:
            incident = self._open_one(s, incident_id, "assign it")
            previous, incident.assignee, incident.updated_at = incident.assignee, person, now
            add_event(s, incident, now, "assigned", actor,
                      f"指派给 {person}" + (f"（原：{previous}）" if previous else ""))

    def set_step(self, incident_id: int, position: int, status: str, actor: str, now: datetime) -> IncidentStepRow:
        if status not in STEP_STATUSES:
            raise UsageError(f"step status: expected one of {', '.join(STEP_STATUSES)}, got {status!r}")
        with self.db.session() as s:
            incident = self._open_one(s, incident_id, "change its plan steps")
            step = s.scalars(select(IncidentStepRow).where(IncidentStepRow.incident_id == incident_id,
                                                           IncidentStepRow.position == position)).first()
            if step is None:
                count = len(list(s.scalars(select(IncidentStepRow.id).where(IncidentStepRow.incident_id == incident_id))))
                raise UsageError(f"incident #{incident_id} has no step {position}"
                                 + (f" (steps 1–{count})" if count else " (no response plan attached)"))
            step.status = status
            step.done_at, step.done_by = (None, None) if status == "pending" else (now, actor)
            incident.updated_at = now
            verb = {"done": "完成", "skipped": "跳过", "pending": "重新打开"}[status]
            add_event(s, incident, now, "step", actor, f"{verb}第 {position} 步：{step.title}",
                      {"position": position, "status": status})
            return step

    # -- reading -------------------------------------------------------------------
    def list(self, status: str | None = None, since: datetime | None = None) -> list[IncidentRow]:
        with self.db.session() as s:
            stmt = select(IncidentRow).order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
            if status:
                stmt = stmt.where(IncidentRow.status == status)
            if since:
                stmt = stmt.where(IncidentRow.opened_at >= since)
            return list(s.scalars(stmt))

    def view(self, incident_id: int) -> IncidentView:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            events = list(incident.events)
            steps = list(s.scalars(select(IncidentStepRow).where(IncidentStepRow.incident_id == incident_id)
                                   .order_by(IncidentStepRow.position)))
            ids: list[int] = []
            for e in events:
                ids.extend(i for i in e.data.get("mention_ids", []) if i not in ids)
            return IncidentView(incident, events, steps, mentions_by_ids(s, ids[:10]))

    def show(self, incident_id: int) -> tuple[IncidentRow, list[IncidentEventRow], list[Mention]]:
        v = self.view(incident_id)
        return v.incident, v.events, v.mentions
