"""What on-call staff do with incidents: acknowledge, note, work plan steps, assign, resolve —
each an event on the incident's timeline with the actor — and read them back (as store records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.core.domain import Mention
from monitor.core.errors import UsageError
from monitor.storage import Database, Session
from monitor.storage import incidents as store
from monitor.storage import timeline
from monitor.storage.incidents import Incident, IncidentEvent, IncidentStep
from monitor.storage.repo import mentions_by_ids

STATUSES = ("open", "acknowledged", "resolved")
STEP_STATUSES = ("done", "skipped", "pending")


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    events: list[IncidentEvent]
    steps: list[IncidentStep]
    mentions: list[Mention]  # cited as evidence, first cited first


class IncidentDesk:
    def __init__(self, db: Database, *, tz: str = "Asia/Shanghai"):
        self.db = db
        self.tz = tz

    @staticmethod
    def _get(s: Session, incident_id: int) -> Incident:
        incident = store.get(s, incident_id)
        if incident is None:
            raise UsageError(f"no incident #{incident_id}")
        return incident

    def _open_one(self, s: Session, incident_id: int, doing: str) -> Incident:
        incident = self._get(s, incident_id)
        if incident.status == "resolved":
            raise UsageError(f"incident #{incident_id} is resolved; cannot {doing}")
        return incident

    def acknowledge(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> Incident:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            if incident.status != "open":
                raise UsageError(f"incident #{incident_id} is {incident.status}, only open incidents can be acknowledged")
            incident = store.update(s, incident_id, status="acknowledged", acked_at=now, acked_by=actor, updated_at=now,
                                    next_escalation_at=None)  # somebody is on it: stop escalating
            timeline.add_event(s, incident_id, now, "acknowledged", actor, note or "已确认，处理中")
            return incident

    def resolve(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> Incident:
        with self.db.session() as s:
            if self._get(s, incident_id).status == "resolved":
                raise UsageError(f"incident #{incident_id} is already resolved")
            incident = store.update(s, incident_id, status="resolved", resolved_at=now, resolved_by=actor,
                                    updated_at=now, next_escalation_at=None)
            timeline.add_event(s, incident_id, now, "resolved", actor, note or "已处置完毕")
            return incident

    def add_note(self, incident_id: int, actor: str, now: datetime, text: str) -> None:
        if not text.strip():
            raise UsageError("a note needs some text")
        with self.db.session() as s:
            self._get(s, incident_id)
            store.update(s, incident_id, updated_at=now)
            timeline.add_event(s, incident_id, now, "note", actor, text)

    def assign(self, incident_id: int, person: str, actor: str, now: datetime) -> None:
        with self.db.session() as s:
            previous = self._open_one(s, incident_id, "assign it").assignee
            store.update(s, incident_id, assignee=person, updated_at=now)
            timeline.add_event(s, incident_id, now, "assigned", actor,
                               f"指派给 {person}" + (f"（原：{previous}）" if previous else ""))

    def set_step(self, incident_id: int, position: int, status: str, actor: str, now: datetime) -> IncidentStep:
        if status not in STEP_STATUSES:
            raise UsageError(f"step status: expected one of {', '.join(STEP_STATUSES)}, got {status!r}")
        with self.db.session() as s:
            self._open_one(s, incident_id, "change its plan steps")
            done = (None, None) if status == "pending" else (now, actor)
            step = store.set_step(s, incident_id, position, status, *done)
            if step is None:
                count = store.step_count(s, incident_id)
                raise UsageError(f"incident #{incident_id} has no step {position}"
                                 + (f" (steps 1–{count})" if count else " (no response plan attached)"))
            store.update(s, incident_id, updated_at=now)
            verb = {"done": "完成", "skipped": "跳过", "pending": "重新打开"}[status]
            timeline.add_event(s, incident_id, now, "step", actor, f"{verb}第 {position} 步：{step.title}",
                               {"position": position, "status": status})
            return step

    # -- reading -------------------------------------------------------------------
    def list(self, status: str | None = None, since: datetime | None = None) -> list[Incident]:
        with self.db.session() as s:
            return store.listing(s, status, since)

    def view(self, incident_id: int) -> IncidentView:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            events = timeline.events(s, incident_id)
            ids: list[int] = []
            for e in events:
                ids.extend(i for i in e.data.get("mention_ids", []) if i not in ids)
            return IncidentView(incident, events, store.steps(s, incident_id), mentions_by_ids(s, ids[:10]))

    def show(self, incident_id: int) -> tuple[Incident, list[IncidentEvent], list[Mention]]:
        v = self.view(incident_id)
        return v.incident, v.events, v.mentions
