"""Incidents: turn rule matches into one incident per crisis (per topic, or per topic and rule with
``incidents.group_by: topic_rule``), with a timeline.

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

What to do is decided by the pure policy in :mod:`alerts.incident_policy`; this module carries it
out through the incidents store. Staff actions (ack, resolve, note, step, assign) live in
:mod:`alerts.incident_desk`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from alerts.alert import Alert, AlertKind, incident_url
from alerts.escalation import IncidentsConfig, Schedule, schedule_for
from alerts.incident_desk import IncidentDesk
from alerts.crisis_summary import summarize
from alerts.inhibition import inhibitor, may_be_inhibited
from alerts.incident_policy import SYSTEM, Paging, decide, first_page, group_key, occurrence, paged_channels, \
    reminder
from alerts.plans import PlanConfig, choose_plan, render_template, step_line, template_vars
from alerts.rules.base import Match
from monitor.core.severity import Severity
from alerts.delivery import alert_to_json
from monitor.storage import Database, Session, deliveries
from monitor.storage import incidents as store
from monitor.storage import repo
from monitor.storage.incidents import Incident, NewStep
from monitor.storage.timeline import add_event

log = logging.getLogger(__name__)
PLAN_STEPS_SHOWN = 3
# a page's 主要诉求 / 热度: the negatives of the rule's window (at least 30 min, at most 6 h) against the
# topic's day before it
SUMMARY_WINDOW = timedelta(minutes=30)
SUMMARY_MAX_WINDOW = timedelta(hours=6)
SUMMARY_BASELINE = timedelta(days=1)
SUMMARY_LIMIT, SUMMARY_BASELINE_LIMIT = 2000, 5000


class IncidentManager(IncidentDesk):
    def __init__(self, db: Database, *, tz: str = "Asia/Shanghai", plans: tuple[PlanConfig, ...] = (),
                 escalation: tuple = (), settings: IncidentsConfig | None = None,
                 rule_plans: dict[str, str] | None = None, public_url: str | None = None,
                 topic_sources: dict[str, tuple[str, ...]] | None = None,
                 topic_keywords: dict[str, tuple[str, ...]] | None = None):
        super().__init__(db, tz=tz)
        self.topic_sources = topic_sources  # topic -> the sources that feed it (inhibition on source failure)
        self.topic_keywords = topic_keywords or {}  # topic -> its keywords: in every mention, never a theme
        self.public_url = public_url  # the web console: every page links to its incident there
        self.plans = plans
        self.escalation = escalation
        self.settings = settings or IncidentsConfig()
        self.rule_plans = rule_plans or {}
        # Called first in every transaction that changes incidents; raises to refuse it. A cluster's rules
        # leader sets it to "do I still hold the rules lease?", so a node that lost it changes nothing.
        self.fence: Callable[[Session], None] | None = None

    @classmethod
    def from_config(cls, db: Database, config) -> "IncidentManager":
        return cls(db, tz=config.timezone, plans=config.plans, escalation=config.escalation,
                   settings=config.incidents, rule_plans={r.name: r.plan for r in config.rules if r.plan},
                   public_url=config.console.public_url, topic_sources=_topic_sources(config),
                   topic_keywords={t.name: (t.name, *t.keywords) for t in config.topics})

    def schedule(self, severity: Severity | str) -> Schedule:
        return schedule_for(Severity(severity), self.escalation, self.settings)

    # -- from rules ----------------------------------------------------------------
    def handle(self, matches: Sequence[Match], now: datetime, *, replay: bool = False) -> list[Alert]:
        alerts: list[Alert] = []
        for match in matches:
            with self.db.session() as s:
                if self.fence is not None:
                    self.fence(s)
                alert = self._carry_out(s, match, now, replay)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _carry_out(self, s: Session, match: Match, now: datetime, replay: bool) -> Alert | None:
        if may_be_inhibited(match, self.settings.inhibit_rules, self.settings.inhibit_on_source_failure):
            held_by = inhibitor(match, store.open_incidents(s), self.settings.inhibit_rules, self.topic_sources,
                                self.settings.inhibit_on_source_failure)
            if held_by is not None:  # recorded on the incident that explains it, not paged
                add_event(s, held_by.id, now, "inhibited", SYSTEM, f"已抑制（由本事件引起）：{match.reason}",
                          {"numbers": match.numbers, "rule": match.rule, "topic": match.topic})
                return None
        key = group_key(match, self.settings.group_by)
        active = store.active(s, key)
        last = store.last_resolved(s, key) if active is None and match.kind == "firing" else None
        d = decide(active, last, match, now, self.settings, replay=replay, key=key)
        if d.action == "nothing":
            return None
        if d.action == "open":
            incident = store.create(s, **d.changes)
        else:
            incident = store.update(s, d.incident_id, **d.changes)
        add_event(s, incident.id, now, d.event, SYSTEM, d.message, dict(d.data))
        if d.attach_plan:
            incident = self._attach_plan(s, incident, match, now)
        if d.page is None:
            return None
        if d.page != "resolved":
            incident = self._summarize(s, incident, match, now)
        if d.escalate:
            paging = first_page(d.page, match.reason, Severity(incident.severity), now,
                                self.schedule(incident.severity), self.settings.quiet_hours, self.tz)
            return self._send(s, incident, paging, now, match.numbers, match.evidence)
        if d.page == "resolved":
            return self._alert(s, incident, "resolved", now, match.reason, match.numbers, (),
                               paged_channels(incident, self.schedule(incident.severity)))
        return self._alert(s, incident, d.page, now, match.reason, match.numbers, match.evidence)

    # -- plans ---------------------------------------------------------------------
    def _attach_plan(self, s: Session, incident: Incident, match: Match, now: datetime) -> Incident:
        plan = choose_plan(self.plans, Severity(incident.severity), self.rule_plans.get(match.rule))
        if plan is None or plan.name == incident.plan:
            return incident
        variables = template_vars(
            incident_id=incident.id, topic=incident.topic, rule=incident.rule, severity=Severity(incident.severity),
            reason=incident.reason, numbers=incident.numbers,
            opened_at=incident.opened_at.astimezone(ZoneInfo(self.tz)).strftime("%Y-%m-%d %H:%M"),
            top_mentions=[{"text": m.text, "url": m.url, "author": m.author} for m in match.evidence],
        )
        store.append_steps(s, incident.id, plan.name, [
            NewStep(step.title, step.owner, now + step.due if step.due is not None else None,
                    render_template(step.template, variables) if step.template else None)
            for step in plan.steps])
        what = "启用应急预案" if incident.plan is None else f"升级应急预案（原：{incident.plan}）"
        add_event(s, incident.id, now, "plan", SYSTEM, f"{what}：{plan.name}，共 {len(plan.steps)} 步")
        return store.update(s, incident.id, plan=plan.name)

    def _plan_lines(self, s: Session, incident: Incident) -> tuple[str, ...]:
        tz = ZoneInfo(self.tz)
        return tuple(step_line(st.position, st.title, st.owner, st.due_at, tz)
                     for st in store.steps(s, incident.id, pending=True, limit=PLAN_STEPS_SHOWN))

    # -- paging and reminders --------------------------------------------------------
    def reminders(self, now: datetime) -> list[Alert]:
        """Pages due for unacknowledged incidents: deferred first pages and escalation steps."""
        alerts: list[Alert] = []
        with self.db.session() as s:
            if self.fence is not None:
                self.fence(s)
            for incident in store.escalation_due(s, now):
                paging = reminder(incident, now, self.schedule(incident.severity), self.settings.quiet_hours, self.tz)
                alert = self._send(s, incident, paging, now, incident.numbers, ())
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _send(self, s: Session, incident: Incident, paging: Paging, now: datetime, numbers: dict,
              top) -> Alert | None:
        incident = store.update(s, incident.id, **paging.changes)
        if paging.event is not None:
            kind, message, data = paging.event
            add_event(s, incident.id, now, kind, SYSTEM, message, data)
        if not paging.send:
            return None
        return self._alert(s, incident, paging.kind, now, paging.reason, numbers, top, paging.channels)

    def _alert(self, s: Session, incident: Incident, kind: AlertKind, at: datetime, reason: str, numbers: dict,
               top, channels: tuple[str, ...] | None = None) -> Alert | None:
        """The alert, staged as a page in this transaction; None if the same page is already staged or
        queued (another daemon made it: it is not paged twice)."""
        alert = Alert(
            kind=kind, incident_id=incident.id, severity=Severity(incident.severity), topic=incident.topic,
            rule=incident.rule, title=f"「{incident.topic}」{incident.rule}", reason=reason, at=at,
            numbers=numbers, top_mentions=tuple(top), ack_command=f"monitor incidents ack {incident.id}",
            tz=self.tz, channels=channels, plan_steps=self._plan_lines(s, incident) if kind != "resolved" else (),
            occurrence=occurrence(kind, incident), console_url=incident_url(self.public_url, incident.id),
            summary=incident.summary if kind != "resolved" else None,
        )
        page_id = deliveries.stage(s, incident_id=incident.id, alert_kind=alert.kind, dedup_key=alert.dedup_key,
                                   alert=alert_to_json(alert), now=at)
        if page_id is None:
            log.info("[stage=incidents] incident #%d %s is already paged (another daemon); not again",
                     incident.id, kind)
            return None
        return replace(alert, outbox_id=page_id)

    # -- what the crisis is about -------------------------------------------------------
    def _summarize(self, s: Session, incident: Incident, match: Match, now: datetime) -> Incident:
        """Read the topic's negatives of the rule's window and the day before, and keep what they say
        (主要诉求, 舆情热度, 最大传播) on the incident for this page and the console."""
        if match.scope != "topic":
            return incident
        window = min(max(match.measurement.window or SUMMARY_WINDOW, SUMMARY_WINDOW), SUMMARY_MAX_WINDOW)
        negatives = repo.topic_mentions(s, match.topic, now - window, now, negative=True, limit=SUMMARY_LIMIT)
        if not negatives:
            return incident
        baseline = repo.topic_texts(s, match.topic, now - window - SUMMARY_BASELINE, now - window,
                                    limit=SUMMARY_BASELINE_LIMIT)
        summary = summarize(negatives, baseline, exclude=self.topic_keywords.get(match.topic, ()))
        return store.update(s, incident.id, summary=summary.as_json())


def _topic_sources(config) -> dict[str, tuple[str, ...]]:
    enabled = tuple(s.name for s in config.sources if s.enabled)
    return {t.name: tuple(n for n in (t.sources or enabled) if n in enabled) for t in config.topics}
