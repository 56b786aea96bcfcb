"""Incidents: turn rule matches into one incident per (topic, rule) burst, with a timeline.

- ``firing`` with no active incident opens one, attaches its response plan and
  pages the first escalation step (``Alert kind="firing"``); if the group's last
  incident was resolved less than ``reopen_within`` ago, that one is reopened
  instead (``"reopened"``). With an active incident, new evidence goes to the
  timeline; a page goes out again only when the severity grows (``"escalated"``).
  A partial unique index guarantees one active incident per group.
- While an incident stays unacknowledged, :meth:`IncidentManager.reminders`
  walks its escalation policy (``"reminder"``); quiet hours hold back pages
  below their minimum severity until they end.
- ``recovered`` auto-resolves the incident with a 已恢复 notice.
- After a restart the rules are replayed over stored mentions (``replay=True``):
  a burst that staff already resolved is then noted, not paged again.
Staff actions (ack, resolve, note, step, assign) live in :mod:`alerts.incident_desk`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.alert import Alert, AlertKind
from alerts.escalation import IncidentsConfig, Schedule, quiet_until, schedule_for
from alerts.incident_desk import IncidentDesk, add_event
from alerts.plans import PlanConfig, choose_plan, render_template, step_line, template_vars
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.core.configtypes import parse_duration
from monitor.storage import Database
from monitor.storage.models import IncidentRow, IncidentStepRow

SYSTEM = "system"
PLAN_STEPS_SHOWN = 3


class IncidentManager(IncidentDesk):
    def __init__(self, db: Database, *, tz: str = "Asia/Shanghai", plans: tuple[PlanConfig, ...] = (),
                 escalation: tuple = (), settings: IncidentsConfig | None = None,
                 rule_plans: dict[str, str] | None = None):
        super().__init__(db, tz=tz)
        self.plans = plans
        self.escalation = escalation
        self.settings = settings or IncidentsConfig()
        self.rule_plans = rule_plans or {}

    @classmethod
    def from_config(cls, db: Database, config) -> "IncidentManager":
        return cls(db, tz=config.timezone, plans=config.plans, escalation=config.escalation,
                   settings=config.incidents, rule_plans={r.name: r.plan for r in config.rules if r.plan})

    def schedule(self, severity: Severity) -> Schedule:
        return schedule_for(severity, self.escalation, self.settings)

    # -- from rules ----------------------------------------------------------------
    def handle(self, matches: Sequence[Match], now: datetime, *, replay: bool = False) -> list[Alert]:
        alerts: list[Alert] = []
        for match in matches:
            with self.db.session() as s:
                if match.kind == "firing":
                    alert = self._firing(s, match, now, replay)
                else:
                    alert = self._recovered(s, match, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _active(self, s: Session, group_key: str) -> IncidentRow | None:
        return s.scalars(
            select(IncidentRow).where(IncidentRow.group_key == group_key, IncidentRow.status != "resolved")
        ).first()

    def _firing(self, s: Session, match: Match, now: datetime, replay: bool) -> Alert | None:
        evidence = {"numbers": match.numbers, "mention_ids": [m.id for m in match.evidence if m.id]}
        incident = self._active(s, match.group_key)
        if incident is not None:
            return self._more_evidence(s, incident, match, now, evidence)
        last = s.scalars(
            select(IncidentRow).where(IncidentRow.group_key == match.group_key)
            .order_by(IncidentRow.resolved_at.desc()).limit(1)
        ).first()
        if last is not None and last.resolved_at is not None:
            if replay and self._handled_in_this_burst(last, match, now):
                add_event(s, last, now, "evidence", SYSTEM, f"重启后复核：已处置的事件信号仍在。{match.reason}", evidence)
                return None
            if now - last.resolved_at < self.settings.reopen_within:
                return self._reopen(s, last, match, now, evidence)
        incident = IncidentRow(
            group_key=match.group_key, topic=match.topic, rule=match.rule, rule_type=match.rule_type,
            severity=match.severity.value, status="open", title=f"「{match.topic}」{match.rule}",
            reason=match.reason, numbers=match.numbers, opened_at=now, updated_at=now, last_signal_at=now,
            reopened_count=0, escalation_step=-1, escalation_round=0,
        )
        s.add(incident)
        s.flush()
        add_event(s, incident, now, "opened", SYSTEM, match.reason, evidence)
        self._attach_plan(s, incident, match, now)
        return self._page(s, incident, "firing", now, match.reason, match.numbers, match.evidence)

    @staticmethod
    def _handled_in_this_burst(last: IncidentRow, match: Match, now: datetime) -> bool:
        window = parse_duration(match.numbers.get("window", "0s"))
        return now - last.resolved_at < max(window, timedelta(minutes=1)) and match.severity <= Severity(last.severity)

    def _more_evidence(self, s: Session, incident: IncidentRow, match: Match, now: datetime, evidence: dict):
        incident.updated_at = incident.last_signal_at = now
        incident.numbers = match.numbers
        if match.severity <= Severity(incident.severity):
            add_event(s, incident, now, "evidence", SYSTEM, match.reason, evidence)
            return None
        old = Severity(incident.severity)
        incident.severity, incident.reason = match.severity.value, match.reason
        add_event(s, incident, now, "escalated", SYSTEM,
                  f"级别由{old.display}升为{match.severity.display}：{match.reason}", evidence)
        self._attach_plan(s, incident, match, now)
        if incident.status == "acknowledged":  # staff are on it: tell them, but do not restart escalation
            return self._alert(s, incident, "escalated", now, match.reason, match.numbers, match.evidence)
        incident.escalation_step, incident.escalation_round = -1, 0
        return self._page(s, incident, "escalated", now, match.reason, match.numbers, match.evidence)

    def _reopen(self, s: Session, incident: IncidentRow, match: Match, now: datetime, evidence: dict) -> Alert | None:
        incident.status, incident.resolved_at, incident.resolved_by = "open", None, None
        incident.acked_at = incident.acked_by = None
        incident.reopened_count = (incident.reopened_count or 0) + 1
        incident.updated_at = incident.last_signal_at = now
        incident.numbers, incident.reason = match.numbers, match.reason
        if match.severity > Severity(incident.severity):
            incident.severity = match.severity.value
        incident.escalation_step, incident.escalation_round = -1, 0
        add_event(s, incident, now, "reopened", SYSTEM, f"解决后再次爆发，事件重开：{match.reason}", evidence)
        return self._page(s, incident, "reopened", now, match.reason, match.numbers, match.evidence)

    def _recovered(self, s: Session, match: Match, now: datetime) -> Alert | None:
        incident = self._active(s, match.group_key)
        if incident is None:
            return None
        incident.status, incident.resolved_at, incident.resolved_by, incident.updated_at = "resolved", now, SYSTEM, now
        incident.next_escalation_at = None
        add_event(s, incident, now, "resolved", SYSTEM, f"自动恢复：{match.reason}", {"numbers": match.numbers})
        return self._alert(s, incident, "resolved", now, match.reason, match.numbers, (), self._paged_channels(incident))

    # -- plans ---------------------------------------------------------------------
    def _attach_plan(self, s: Session, incident: IncidentRow, match: Match, now: datetime) -> None:
        plan = choose_plan(self.plans, Severity(incident.severity), self.rule_plans.get(match.rule))
        if plan is None or plan.name == incident.plan:
            return
        existing = list(s.scalars(select(IncidentStepRow).where(IncidentStepRow.incident_id == incident.id)))
        variables = template_vars(
            incident_id=incident.id, topic=incident.topic, rule=incident.rule, severity=Severity(incident.severity),
            reason=incident.reason, numbers=incident.numbers,
            opened_at=incident.opened_at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M"),
            top_mentions=[{"text": m.text, "url": m.url, "author": m.author} for m in match.evidence],
        )
        for i, step in enumerate(plan.steps, start=len(existing) + 1):
            s.add(IncidentStepRow(
                incident_id=incident.id, position=i, plan=plan.name, title=step.title, owner=step.owner,
                due_at=now + step.due if step.due is not None else None, status="pending",
                reply=render_template(step.template, variables) if step.template else None,
            ))
        what = "启用应急预案" if incident.plan is None else f"升级应急预案（原：{incident.plan}）"
        incident.plan = plan.name
        add_event(s, incident, now, "plan", SYSTEM, f"{what}：{plan.name}，共 {len(plan.steps)} 步")
        s.flush()

    def _plan_lines(self, s: Session, incident: IncidentRow) -> tuple[str, ...]:
        steps = s.scalars(select(IncidentStepRow).where(IncidentStepRow.incident_id == incident.id,
                                                        IncidentStepRow.status == "pending")
                          .order_by(IncidentStepRow.position).limit(PLAN_STEPS_SHOWN))
        tz = ZoneInfo(self.tz)
        return tuple(step_line(st.position, st.title, st.owner, st.due_at, tz) for st in steps)

    # -- paging and reminders --------------------------------------------------------
    def _page(self, s: Session, incident: IncidentRow, kind: AlertKind, now: datetime, reason: str,
              numbers: dict, evidence) -> Alert | None:
        """Page step 0 of the incident's escalation schedule, unless quiet hours hold it back."""
        held = quiet_until(now, Severity(incident.severity), self.settings.quiet_hours, self.tz)
        if held is not None:
            incident.escalation_step, incident.escalation_round, incident.next_escalation_at = -1, 0, held
            local = held.astimezone(ZoneInfo(self.tz)).strftime("%H:%M")
            add_event(s, incident, now, "quiet_hours", SYSTEM, f"静默时段，{Severity(incident.severity).display}通知推迟至 {local}")
            return None
        schedule = self.schedule(Severity(incident.severity))
        self._advance(incident, schedule, 0, 0, now)
        return self._alert(s, incident, kind, now, reason, numbers, evidence, schedule.channels(0))

    @staticmethod
    def _advance(incident: IncidentRow, schedule: Schedule, step: int, round_: int, now: datetime) -> None:
        incident.escalation_step, incident.escalation_round = step, round_
        following = schedule.next_after(step, round_)
        incident.next_escalation_at = now + following[2] if following else None

    def reminders(self, now: datetime) -> list[Alert]:
        """Pages due for unacknowledged incidents: deferred first pages and escalation steps."""
        alerts: list[Alert] = []
        with self.db.session() as s:
            due = s.scalars(select(IncidentRow).where(IncidentRow.status == "open",
                                                      IncidentRow.next_escalation_at <= now))
            for incident in list(due):
                alert = self._remind(s, incident, now)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _remind(self, s: Session, incident: IncidentRow, now: datetime) -> Alert | None:
        severity = Severity(incident.severity)
        if incident.escalation_step < 0:  # a first page held back by quiet hours
            return self._page(s, incident, "firing", now, incident.reason, incident.numbers, ())
        held = quiet_until(now, severity, self.settings.quiet_hours, self.tz)
        if held is not None:
            incident.next_escalation_at = held
            return None
        schedule = self.schedule(severity)
        following = schedule.next_after(incident.escalation_step, incident.escalation_round)
        if following is None:
            incident.next_escalation_at = None
            return None
        step, round_, _ = following
        self._advance(incident, schedule, step, round_, now)
        channels = schedule.channels(step)
        minutes = int((now - incident.opened_at).total_seconds() // 60)
        message = f"已 {minutes} 分钟无人确认，{'通知 ' + '、'.join(channels) if channels else '再次通知'}"
        add_event(s, incident, now, "reminder", SYSTEM, message, {"step": step, "round": round_})
        return self._alert(s, incident, "reminder", now, f"{message}。{incident.reason}", incident.numbers, (), channels)

    def _paged_channels(self, incident: IncidentRow) -> tuple[str, ...] | None:
        schedule = self.schedule(Severity(incident.severity))
        names: list[str] = []
        for step in range(max(incident.escalation_step, 0) + 1 if incident.escalation_round == 0 else len(schedule.steps)):
            channels = schedule.channels(step)
            if channels is None:
                return None
            names.extend(c for c in channels if c not in names)
        return tuple(names) or None

    def _alert(self, s: Session, incident: IncidentRow, kind: AlertKind, at: datetime, reason: str, numbers: dict,
               top, channels: tuple[str, ...] | None = None) -> Alert:
        return Alert(
            kind=kind, incident_id=incident.id, severity=Severity(incident.severity), topic=incident.topic,
            rule=incident.rule, title=f"「{incident.topic}」{incident.rule}", reason=reason, at=at,
            numbers=numbers, top_mentions=tuple(top), ack_command=f"monitor incidents ack {incident.id}",
            tz=self.tz, channels=channels, plan_steps=self._plan_lines(s, incident) if kind != "resolved" else (),
        )
