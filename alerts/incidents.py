"""Incidents: turn rule matches into one incident per (topic, rule) burst, with a timeline.

- ``firing`` with no active incident opens one and pages (``Alert kind="firing"``);
  with an active incident it adds evidence to the timeline, and pages again only
  when the severity grows (``"escalated"``). The database's partial unique index
  guarantees at most one active incident per group even across restarts.
- A ``firing`` for a group whose last incident was resolved during this same
  burst (less than one rule window ago) at the same or lower severity is noted
  on that incident instead of paging again.
- ``recovered`` auto-resolves the active incident and sends a 已恢复 notice.
- Staff actions (ack, resolve, note) are events with an actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.alert import Alert
from alerts.rules.base import Match
from alerts.severity import Severity
from monitor.configtypes import parse_duration
from monitor.errors import UsageError
from monitor.storage import Database
from monitor.storage.models import IncidentEventRow, IncidentRow
from monitor.storage.repo import mentions_by_ids

SYSTEM = "system"
STATUSES = ("open", "acknowledged", "resolved")


def add_event(session: Session, incident: IncidentRow, at: datetime, kind: str, actor: str, message: str,
              data: dict | None = None) -> None:
    session.add(IncidentEventRow(incident_id=incident.id, at=at, kind=kind, actor=actor, message=message,
                                 data=data or {}))


def alert_for(incident: IncidentRow, kind, at: datetime, reason: str, numbers: dict, top, tz: str) -> Alert:
    return Alert(
        kind=kind, incident_id=incident.id, severity=Severity(incident.severity), topic=incident.topic,
        rule=incident.rule, title=f"「{incident.topic}」{incident.rule}", reason=reason, at=at,
        numbers=numbers, top_mentions=tuple(top), ack_command=f"monitor incidents ack {incident.id}", tz=tz,
    )


class IncidentManager:
    def __init__(self, db: Database, *, tz: str = "Asia/Shanghai"):
        self.db = db
        self.tz = tz

    # -- from rules ----------------------------------------------------------------
    def handle(self, matches: Sequence[Match], now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for match in matches:
            with self.db.session() as s:
                alert = self._firing(s, match, now) if match.kind == "firing" else self._recovered(s, match, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _active(self, s: Session, group_key: str) -> IncidentRow | None:
        return s.scalars(
            select(IncidentRow).where(IncidentRow.group_key == group_key, IncidentRow.status != "resolved")
        ).first()

    def _firing(self, s: Session, match: Match, now: datetime) -> Alert | None:
        evidence = {"numbers": match.numbers, "mention_ids": [m.id for m in match.evidence if m.id]}
        incident = self._active(s, match.group_key)
        if incident is None:
            last = s.scalars(
                select(IncidentRow).where(IncidentRow.group_key == match.group_key)
                .order_by(IncidentRow.resolved_at.desc()).limit(1)
            ).first()
            if last is not None and self._same_burst(last, match, now):
                add_event(s, last, now, "evidence", SYSTEM, f"已处置后信号仍在：{match.reason}", evidence)
                return None
            incident = IncidentRow(
                group_key=match.group_key, topic=match.topic, rule=match.rule, rule_type=match.rule_type,
                severity=match.severity.value, status="open", title=f"「{match.topic}」{match.rule}",
                reason=match.reason, numbers=match.numbers, opened_at=now, updated_at=now,
            )
            s.add(incident)
            s.flush()
            add_event(s, incident, now, "opened", SYSTEM, match.reason, evidence)
            return alert_for(incident, "firing", now, match.reason, match.numbers, match.evidence, self.tz)
        incident.updated_at = now
        incident.numbers = match.numbers
        if match.severity > Severity(incident.severity):
            old = Severity(incident.severity)
            incident.severity = match.severity.value
            incident.reason = match.reason
            add_event(s, incident, now, "escalated", SYSTEM,
                      f"级别由{old.display}升为{match.severity.display}：{match.reason}", evidence)
            return alert_for(incident, "escalated", now, match.reason, match.numbers, match.evidence, self.tz)
        add_event(s, incident, now, "evidence", SYSTEM, match.reason, evidence)
        return None

    @staticmethod
    def _same_burst(last: IncidentRow, match: Match, now: datetime) -> bool:
        window = parse_duration(match.numbers.get("window", "0s"))
        return (
            last.resolved_at is not None
            and now - last.resolved_at < window
            and match.severity <= Severity(last.severity)
        )

    def _recovered(self, s: Session, match: Match, now: datetime) -> Alert | None:
        incident = self._active(s, match.group_key)
        if incident is None:
            return None
        incident.status, incident.resolved_at, incident.resolved_by, incident.updated_at = "resolved", now, SYSTEM, now
        add_event(s, incident, now, "resolved", SYSTEM, f"自动恢复：{match.reason}", {"numbers": match.numbers})
        return alert_for(incident, "resolved", now, match.reason, match.numbers, (), self.tz)

    # -- from staff ----------------------------------------------------------------
    def _get(self, s: Session, incident_id: int) -> IncidentRow:
        incident = s.get(IncidentRow, incident_id)
        if incident is None:
            raise UsageError(f"no incident #{incident_id}")
        return incident

    def acknowledge(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> IncidentRow:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            if incident.status != "open":
                raise UsageError(f"incident #{incident_id} is {incident.status}, only open incidents can be acknowledged")
            incident.status, incident.acked_at, incident.acked_by, incident.updated_at = "acknowledged", now, actor, now
            add_event(s, incident, now, "acknowledged", actor, note or "已确认，处理中")
            return incident

    def resolve(self, incident_id: int, actor: str, now: datetime, note: str | None = None) -> IncidentRow:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            if incident.status == "resolved":
                raise UsageError(f"incident #{incident_id} is already resolved")
            incident.status, incident.resolved_at, incident.resolved_by, incident.updated_at = "resolved", now, actor, now
            add_event(s, incident, now, "resolved", actor, note or "已处置完毕")
            return incident

    def add_note(self, incident_id: int, actor: str, now: datetime, text: str) -> None:
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            incident.updated_at = now
            add_event(s, incident, now, "note", actor, text)

    # -- reading -------------------------------------------------------------------
    def list(self, status: str | None = None, since: datetime | None = None) -> list[IncidentRow]:
        with self.db.session() as s:
            stmt = select(IncidentRow).order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
            if status:
                stmt = stmt.where(IncidentRow.status == status)
            if since:
                stmt = stmt.where(IncidentRow.opened_at >= since)
            return list(s.scalars(stmt))

    def show(self, incident_id: int) -> tuple[IncidentRow, list[IncidentEventRow], list]:
        """The incident, its timeline and the mentions cited as evidence."""
        with self.db.session() as s:
            incident = self._get(s, incident_id)
            events = list(incident.events)
            ids: list[int] = []
            for e in events:
                ids.extend(i for i in e.data.get("mention_ids", []) if i not in ids)
            return incident, events, mentions_by_ids(s, ids[:10])
