"""The incident policy as pure functions: records and the time in, frozen decisions out (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

from alerts.escalation import EscalationPolicy, IncidentsConfig, QuietHours, schedule_for
from alerts.incident_policy import decide, first_page, occurrence, paged_channels, reminder
from monitor.core.severity import Severity
from monitor.storage.incidents import Incident
from tests.factories import T0, TOPIC, make_match, make_mention

MIN = timedelta(minutes=1)
SETTINGS = IncidentsConfig()  # reopen_within 2h, reminders every 30m ×2, at most 3
GROUP = f"{TOPIC}|负面激增"


def incident(**kw) -> Incident:
    values = dict(id=7, group_key=GROUP, topic=TOPIC, rule="负面激增", rule_type="negative_spike", severity="IV",
                  status="open", title=f"「{TOPIC}」负面激增", reason="r", numbers={}, opened_at=T0, updated_at=T0,
                  escalation_step=0, escalation_round=0)
    return Incident(**(values | kw))


def test_a_first_firing_opens_an_incident_that_pages_through_escalation_with_its_plan():
    cited = make_mention(id=11)
    match = make_match(severity=Severity.III, evidence=(cited, make_mention()))
    d = decide(None, None, match, T0, SETTINGS)
    assert (d.action, d.incident_id, d.event, d.message, d.page, d.escalate, d.attach_plan) == (
        "open", None, "opened", match.reason, "firing", True, True)
    assert d.data == {"numbers": match.numbers, "mention_ids": [11], "rule": "负面激增"}
    assert {k: d.changes[k] for k in ("group_key", "severity", "status", "opened_at", "escalation_step")} == {
        "group_key": GROUP, "severity": "III", "status": "open", "opened_at": T0, "escalation_step": -1}


def test_an_active_incident_takes_evidence_and_pages_again_only_when_worse():
    active = incident()
    same = decide(active, None, make_match(), T0 + MIN, SETTINGS)
    assert (same.action, same.incident_id, same.event, same.page) == ("evidence", 7, "evidence", None)
    assert same.changes == {"updated_at": T0 + MIN, "last_signal_at": T0 + MIN, "numbers": make_match().numbers,
                            "signals": {"负面激增": "IV"}}

    worse = decide(active, None, make_match(severity=Severity.II, reason="更严重了"), T0 + MIN, SETTINGS)
    assert (worse.action, worse.event, worse.page, worse.escalate, worse.attach_plan) == (
        "escalate", "escalated", "escalated", True, True)
    assert worse.message == "级别由一般（IV级）升为重大（II级）：更严重了"
    assert (worse.changes["severity"], worse.changes["escalation_step"]) == ("II", -1)

    acked = decide(replace(active, status="acknowledged"), None, make_match(severity=Severity.II), T0, SETTINGS)
    assert (acked.page, acked.escalate) == ("escalated", False)  # told at once, escalation not restarted
    assert "escalation_step" not in acked.changes


def test_a_flare_up_within_reopen_within_reopens_the_last_incident_else_opens_a_new_one():
    last = incident(status="resolved", resolved_at=T0, resolved_by="alice", severity="III", reopened_count=1)
    d = decide(None, last, make_match(severity=Severity.IV), T0 + 119 * MIN, SETTINGS)
    assert (d.action, d.incident_id, d.event, d.page, d.escalate) == ("reopen", 7, "reopened", "reopened", True)
    assert {k: d.changes[k] for k in ("status", "resolved_at", "acked_by", "reopened_count", "severity")} == {
        "status": "open", "resolved_at": None, "acked_by": None, "reopened_count": 2, "severity": "III"}
    assert decide(None, last, make_match(), T0 + 120 * MIN, SETTINGS).action == "open"


def test_after_a_restart_a_burst_staff_already_resolved_is_only_noted():
    last = incident(status="resolved", resolved_at=T0)
    d = decide(None, last, make_match(), T0 + 5 * MIN, SETTINGS, replay=True)  # within the match's 10m window
    assert (d.action, d.incident_id, d.event, d.page, dict(d.changes)) == ("note", 7, "evidence", None, {})
    assert d.message.startswith("重启后复核：已处置的事件信号仍在。")
    assert decide(None, last, make_match(severity=Severity.III), T0 + 5 * MIN, SETTINGS, replay=True).action == "reopen"
    assert decide(None, last, make_match(), T0 + 11 * MIN, SETTINGS, replay=True).action == "reopen"


def test_recovery_resolves_the_active_incident_or_does_nothing():
    d = decide(incident(), None, make_match(kind="recovered", reason="已回落"), T0 + 20 * MIN, SETTINGS)
    assert (d.action, d.event, d.message, d.page, d.escalate) == ("resolve", "resolved", "自动恢复：已回落", "resolved",
                                                                  False)
    assert (d.changes["status"], d.changes["resolved_by"], d.changes["next_escalation_at"]) == ("resolved", "system",
                                                                                               None)
    assert decide(None, incident(status="resolved", resolved_at=T0), make_match(kind="recovered"), T0,
                  SETTINGS).action == "nothing"


POLICY = EscalationPolicy(name="重大", severities=("II", "I"), repeat=0,
                          steps=[{"channels": ["值班群"]}, {"after": "10m", "channels": ["主管"]}])
NIGHT = datetime(2026, 3, 15, 16, 0, tzinfo=timezone.utc)  # 00:00 in Shanghai
QUIET = QuietHours(start=time(23), end=time(7), min_severity=Severity.II)


def test_first_page_is_step_zero_unless_quiet_hours_hold_it():
    schedule = schedule_for(Severity.II, (POLICY,), SETTINGS)
    now = first_page("firing", "r", Severity.II, NIGHT, schedule, QUIET, "Asia/Shanghai")
    assert (now.send, now.channels, dict(now.changes)) == (True, ("值班群",), {
        "escalation_step": 0, "escalation_round": 0, "next_escalation_at": NIGHT + 10 * MIN})
    held = first_page("firing", "r", Severity.IV, NIGHT, schedule_for(Severity.IV, (), SETTINGS), QUIET,
                      "Asia/Shanghai")
    morning = datetime(2026, 3, 15, 23, 0, tzinfo=timezone.utc)
    assert (held.send, held.changes["next_escalation_at"], held.event[0]) == (False, morning, "quiet_hours")
    assert held.event[1] == "静默时段，一般（IV级）通知推迟至 07:00"


def test_reminders_walk_the_schedule_then_stop():
    schedule = schedule_for(Severity.II, (POLICY,), SETTINGS)
    open_ = incident(severity="II", next_escalation_at=T0 + 10 * MIN)
    r = reminder(open_, T0 + 10 * MIN, schedule, None, "Asia/Shanghai")
    assert (r.send, r.kind, r.channels, r.event[2]) == (True, "reminder", ("主管",), {"step": 1, "round": 0})
    assert r.reason == "已 10 分钟无人确认，通知 主管。r"
    done = reminder(replace(open_, escalation_step=1), T0 + 20 * MIN, schedule, None, "Asia/Shanghai")
    assert (done.send, dict(done.changes)) == (False, {"next_escalation_at": None})
    held = reminder(incident(escalation_step=-1), T0, schedule_for(Severity.IV, (), SETTINGS), None, "Asia/Shanghai")
    assert (held.send, held.kind) == (True, "firing")  # a first page quiet hours held back goes out as one


def test_occurrence_tells_reminders_and_reopenings_apart():
    assert occurrence("firing", incident()) == ""
    assert occurrence("reminder", incident(escalation_step=1, escalation_round=2)) == "s1r2"
    assert occurrence("reopened", incident(reopened_count=2)) == "r2"
    assert occurrence("reminder", incident(escalation_step=0, escalation_round=1, reopened_count=2)) == "s0r1-r2"
    assert occurrence("resolved", incident(reopened_count=1)) == "r1"


def test_the_recovery_notice_goes_to_the_channels_paged_so_far():
    schedule = schedule_for(Severity.II, (POLICY,), SETTINGS)
    assert paged_channels(incident(escalation_step=0), schedule) == ("值班群",)
    assert paged_channels(incident(escalation_step=1), schedule) == ("值班群", "主管")
    assert paged_channels(incident(), schedule_for(Severity.IV, (), SETTINGS)) is None  # every channel


def test_one_incident_per_crisis_every_rule_joins_and_it_resolves_when_the_last_signal_recovers():
    opened = decide(None, None, make_match(severity=Severity.IV), T0, SETTINGS, key=TOPIC)
    assert (opened.changes["group_key"], opened.changes["signals"]) == (TOPIC, {"负面激增": "IV"})
    active = incident(group_key=TOPIC, signals={"负面激增": "IV"})

    keyword = make_match(rule="危机词", rule_type="keyword", severity=Severity.IV, reason="出现敏感词")
    joined = decide(active, None, keyword, T0 + MIN, SETTINGS, key=TOPIC)
    assert (joined.action, joined.page, joined.incident_id) == ("evidence", None, 7)  # no second page
    assert joined.message == "「危机词」同时告警：出现敏感词" and joined.data["rule"] == "危机词"
    assert joined.changes["signals"] == {"负面激增": "IV", "危机词": "IV"}
    assert "numbers" not in joined.changes  # the incident keeps the opening rule's figures

    worse = decide(active, None, make_match(rule="大V负面", rule_type="influencer", severity=Severity.II), T0, SETTINGS)
    assert (worse.action, worse.page) == ("escalate", "escalated")  # a worse signal from any rule escalates
    assert worse.changes["signals"] == {"负面激增": "IV", "大V负面": "II"}

    both = replace(active, signals={"负面激增": "IV", "危机词": "IV"})
    one = decide(both, None, make_match(kind="recovered", reason="回落"), T0 + 9 * MIN, SETTINGS, key=TOPIC)
    assert (one.action, one.event, one.page) == ("evidence", "recovered", None)
    assert one.changes == {"signals": {"危机词": "IV"}, "updated_at": T0 + 9 * MIN}
    assert one.message == "「负面激增」信号已回落，「危机词」仍在告警：回落"
    last = decide(replace(active, signals={"危机词": "IV"}), None,
                  make_match(kind="recovered", rule="危机词", rule_type="keyword"), T0 + 9 * MIN, SETTINGS, key=TOPIC)
    assert (last.action, last.page, last.changes["signals"]) == ("resolve", "resolved", {})
    # a rule whose signal is not part of this incident (it fired into an earlier one) changes nothing
    assert decide(replace(active, signals={"危机词": "IV"}), None, make_match(kind="recovered"), T0, SETTINGS,
                  key=TOPIC).action == "nothing"


def test_incidents_of_older_rows_without_signals_carry_their_opening_rule():
    old = incident()  # signals None: written before grouping
    assert decide(old, None, make_match(kind="recovered"), T0, SETTINGS).action == "resolve"
