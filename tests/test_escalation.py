"""Escalation schedules and quiet hours as pure functions (time passed in)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from alerts.escalation import EscalationPolicy, IncidentsConfig, QuietHours, quiet_until, schedule_for
from monitor.core.severity import Severity
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError

MIN = timedelta(minutes=1)
POLICY = EscalationPolicy(name="重大", severities=("II", "I"), repeat=1, repeat_every="20m",
                          steps=[{"channels": ["值班群"]}, {"after": "15m", "channels": ["主管", "值班群"]}])


def test_policy_steps_then_repeat_with_backoff_then_stop():
    s = schedule_for(Severity.II, (POLICY,), IncidentsConfig())
    assert s.channels(0) == ("值班群",) and s.channels(1) == ("主管", "值班群")
    assert s.next_after(0, 0) == (1, 0, 15 * MIN)
    assert s.next_after(1, 0) == (0, 1, 20 * MIN)  # next round after repeat_every
    assert s.next_after(0, 1) == (1, 1, 15 * MIN)
    assert s.next_after(1, 1) is None  # repeat=1: done


def test_default_schedule_is_every_channel_with_growing_reminders():
    s = schedule_for(Severity.IV, (POLICY,), IncidentsConfig(realert_every="30m", realert_limit=4, realert_max="1h"))
    assert s.channels(0) is None
    delays = []
    step, round_ = 0, 0
    while (nxt := s.next_after(step, round_)) is not None:
        step, round_, delay = nxt
        delays.append(delay)
    assert delays == [30 * MIN, 60 * MIN, 60 * MIN, 60 * MIN]  # 30m, ×2, capped at 1h; 4 reminders


SHANGHAI_23_30 = datetime(2026, 3, 15, 15, 30, tzinfo=timezone.utc)  # 23:30 in Asia/Shanghai
QUIET = QuietHours(start=time(23), end=time(7), min_severity=Severity.II)


def test_quiet_hours_across_midnight_hold_low_severity_until_morning():
    end = quiet_until(SHANGHAI_23_30, Severity.IV, QUIET, "Asia/Shanghai")
    assert end == datetime(2026, 3, 15, 23, 0, tzinfo=timezone.utc)  # 07:00 next day in Shanghai
    assert quiet_until(SHANGHAI_23_30 + 6 * 60 * MIN, Severity.III, QUIET, "Asia/Shanghai") == end  # 05:30
    assert quiet_until(SHANGHAI_23_30, Severity.II, QUIET, "Asia/Shanghai") is None  # serious pages go out
    assert quiet_until(SHANGHAI_23_30 - 60 * MIN, Severity.IV, QUIET, "Asia/Shanghai") is None  # 22:30
    assert quiet_until(end, Severity.IV, QUIET, "Asia/Shanghai") is None  # 07:00 sharp: awake
    assert quiet_until(SHANGHAI_23_30, Severity.IV, None, "Asia/Shanghai") is None


def test_quiet_hours_within_a_day():
    lunch = QuietHours(start=time(12), end=time(13, 30), min_severity=Severity.I)
    at = datetime(2026, 3, 15, 4, 15, tzinfo=timezone.utc)  # 12:15 Shanghai
    assert quiet_until(at, Severity.II, lunch, "Asia/Shanghai") == datetime(2026, 3, 15, 5, 30, tzinfo=timezone.utc)


BASE = """
channels:
  - {name: 值班群, type: console}
topics:
  - {name: 品牌, keywords: [品牌]}
rules:
  - {name: 负面激增, type: negative_spike, plan: 一般预案}
plans:
  - name: 一般预案
    severities: [IV, III]
    steps:
      - {title: 核实, owner: 舆情专员, due: 30m, template: "关于{{ topic }}，我们正在核实"}
escalation:
  - name: 重大
    severities: [II, I]
    steps:
      - {channels: [值班群]}
"""


def test_config_accepts_plans_escalation_and_quiet_hours():
    cfg = parse_config(BASE + "incidents:\n  quiet_hours: {start: '23:00', end: '07:00'}\n")
    assert cfg.plans[0].steps[0].due == 30 * MIN and cfg.rules[0].plan == "一般预案"
    assert cfg.incidents.quiet_hours.start == time(23) and cfg.incidents.reopen_within == 120 * MIN


@pytest.mark.parametrize("change,expected", [
    (("plan: 一般预案}", "plan: 不存在}"), "config.yaml: rules[0].plan: unknown plan '不存在'; known: 一般预案"),
    (("- {channels: [值班群]}", "- {channels: [老板]}"),
     "config.yaml: escalation[0].steps[0].channels[0]: unknown channel '老板'; known: 值班群"),
    (("{{ topic }}", "{{ brand }}"), "config.yaml: plans[0].steps[0].template: template does not render: "
                                     "'brand' is undefined; variables: incident_id, numbers, opened_at, reason, "
                                     "rule, severity, severity_label, top_mentions, topic, got '关于{{ brand }}，我们正在核实'"),
    (("severities: [II, I]", "severities: [V]"), "config.yaml: escalation[0].severities[0]: Input should be 'IV', 'III', 'II' or 'I', got 'V'"),
])
def test_config_errors_name_the_field(change, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(BASE.replace(*change))
    assert expected in info.value.problems
