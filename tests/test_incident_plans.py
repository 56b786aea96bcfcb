"""Response plans, escalation reminders and quiet hours through IncidentManager on a real database."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from alerts.escalation import EscalationPolicy, IncidentsConfig, QuietHours
from alerts.incidents import IncidentManager
from alerts.plans import PlanConfig
from monitor.core.severity import Severity
from monitor.core.errors import UsageError
from tests.factories import T0, TOPIC, make_match, make_mention

MIN = timedelta(minutes=1)
PLANS = (
    PlanConfig(name="一般舆情预案", severities=("IV", "III"), steps=[
        {"title": "核实信息来源", "owner": "舆情专员", "due": "30m"},
        {"title": "发布客服回复", "owner": "客服主管", "due": "1h",
         "template": "您好，关于{{ topic }}的反馈（事件#{{ incident_id }}）我们已收到，正在核实处理。"},
    ]),
    PlanConfig(name="重大舆情预案", severities=("II", "I"), steps=[
        {"title": "启动危机小组", "owner": "公关经理", "due": "15m"},
        {"title": "法务评估", "owner": "法务"},
    ]),
)
POLICY = EscalationPolicy(name="重大", severities=("II", "I"), repeat=0,
                          steps=[{"channels": ["值班群"]}, {"after": "10m", "channels": ["主管"]}])


def manager(db, **kw) -> IncidentManager:
    kw.setdefault("plans", PLANS)
    kw.setdefault("escalation", (POLICY,))
    return IncidentManager(db, **kw)


def test_opening_attaches_the_plan_for_the_severity_with_rendered_replies(db):
    m = manager(db)
    [alert] = m.handle([make_match(evidence=(make_mention(text="喝完拉肚子"),))], T0)
    assert alert.plan_steps == ("1. 核实信息来源（舆情专员，12:30前）", "2. 发布客服回复（客服主管，13:00前）")
    view = m.view(alert.incident_id)
    assert view.incident.plan == "一般舆情预案"
    assert [(s.position, s.status, s.due_at) for s in view.steps] == [(1, "pending", T0 + 30 * MIN),
                                                                     (2, "pending", T0 + 60 * MIN)]
    assert view.steps[1].reply == f"您好，关于{TOPIC}的反馈（事件#{alert.incident_id}）我们已收到，正在核实处理。"
    assert [e.kind for e in view.events] == ["opened", "plan"]


def test_steps_are_worked_on_the_timeline_and_escalation_appends_the_bigger_plan(db):
    m = manager(db)
    [alert] = m.handle([make_match()], T0)
    iid = alert.incident_id
    m.set_step(iid, 1, "done", "小王", T0 + 5 * MIN)
    [esc] = m.handle([make_match(severity=Severity.II)], T0 + 6 * MIN)
    assert esc.kind == "escalated" and esc.channels == ("值班群",)
    assert esc.plan_steps[0] == "2. 发布客服回复（客服主管，13:00前）"  # pending steps only
    view = m.view(iid)
    assert [(s.position, s.plan, s.status, s.done_by) for s in view.steps] == [
        (1, "一般舆情预案", "done", "小王"), (2, "一般舆情预案", "pending", None),
        (3, "重大舆情预案", "pending", None), (4, "重大舆情预案", "pending", None)]
    assert [(e.kind, e.actor) for e in view.events][2:] == [("step", "小王"), ("escalated", "system"), ("plan", "system")]
    with pytest.raises(UsageError, match="has no step 9 \\(steps 1–4\\)"):
        m.set_step(iid, 9, "done", "小王", T0)
    with pytest.raises(UsageError, match="expected one of done, skipped, pending"):
        m.set_step(iid, 1, "finished", "小王", T0)


def test_unacknowledged_incident_walks_the_escalation_policy_and_ack_stops_it(db):
    m = manager(db)
    [first] = m.handle([make_match(severity=Severity.II)], T0)
    assert first.channels == ("值班群",)
    assert m.reminders(T0 + 9 * MIN) == []
    [second] = m.reminders(T0 + 10 * MIN)
    assert (second.kind, second.channels) == ("reminder", ("主管",))
    assert "已 10 分钟无人确认，通知 主管" in second.reason
    assert m.reminders(T0 + 5 * 60 * MIN) == []  # repeat=0: the policy is exhausted

    [other] = m.handle([make_match(topic="品牌B", severity=Severity.II)], T0)
    m.acknowledge(other.incident_id, "小王", T0 + MIN)
    assert m.reminders(T0 + 60 * MIN) == []


def test_default_reminders_repeat_with_backoff_to_every_channel(db):
    m = manager(db, escalation=(), settings=IncidentsConfig(realert_every="30m", realert_limit=2))
    [first] = m.handle([make_match()], T0)
    assert first.channels is None
    assert [(a.kind, a.dedup_key) for a in m.reminders(T0 + 30 * MIN)] == [
        ("reminder", f"incident-{first.incident_id}-reminder-IV-s0r1")]
    assert m.reminders(T0 + 89 * MIN) == []
    assert [(a.kind, a.dedup_key) for a in m.reminders(T0 + 90 * MIN)] == [  # 30m then 60m
        ("reminder", f"incident-{first.incident_id}-reminder-IV-s0r2")]  # each reminder its own notification
    assert m.reminders(T0 + 24 * 60 * MIN) == []  # limit reached


def test_quiet_hours_hold_low_severity_pages_until_they_end(db):
    night = datetime(2026, 3, 15, 16, 0, tzinfo=timezone.utc)  # 00:00 in Shanghai
    quiet = QuietHours(start=time(23), end=time(7), min_severity=Severity.II)
    m = manager(db, settings=IncidentsConfig(quiet_hours=quiet))
    assert m.handle([make_match()], night) == []  # IV at midnight: held
    [loud] = m.handle([make_match(topic="品牌B", severity=Severity.II)], night)  # II pages anyway
    assert loud.kind == "firing"
    m.acknowledge(loud.incident_id, "小王", night + MIN)

    morning = datetime(2026, 3, 15, 23, 0, tzinfo=timezone.utc)  # 07:00 in Shanghai
    assert [a.topic for a in m.reminders(morning - MIN)] == []
    [held] = m.reminders(morning)
    assert (held.kind, held.topic, held.severity) == ("firing", TOPIC, Severity.IV)
    assert [e.kind for e in m.view(held.incident_id).events] == ["opened", "plan", "quiet_hours"]


def test_resolved_notice_goes_to_the_channels_that_were_paged(db):
    m = manager(db)
    [first] = m.handle([make_match(severity=Severity.II)], T0)
    [done] = m.handle([make_match(kind="recovered", severity=Severity.II)], T0 + 5 * MIN)
    assert (done.kind, done.channels) == ("resolved", ("值班群",))
    assert m.view(first.incident_id).incident.next_escalation_at is None


def test_assign_and_acting_on_resolved_incidents(db):
    m = manager(db)
    [alert] = m.handle([make_match()], T0)
    m.assign(alert.incident_id, "李经理", "小王", T0 + MIN)
    m.resolve(alert.incident_id, "李经理", T0 + 2 * MIN)
    with pytest.raises(UsageError, match="is resolved; cannot assign it"):
        m.assign(alert.incident_id, "小张", "小王", T0 + 3 * MIN)
    with pytest.raises(UsageError, match="is resolved; cannot change its plan steps"):
        m.set_step(alert.incident_id, 1, "done", "小王", T0 + 3 * MIN)
    view = m.view(alert.incident_id)
    assert view.incident.assignee == "李经理"
    assert [(e.kind, e.message) for e in view.events if e.kind == "assigned"] == [("assigned", "指派给 李经理")]
