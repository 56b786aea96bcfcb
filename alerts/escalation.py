"""Escalation policies, reminders while unacknowledged, and quiet hours — pure schedule logic.

A policy (per severity) lists steps: who is notified first, and who next if
nobody acknowledges within N minutes; after the last step the whole list
repeats up to ``repeat`` more times with a growing interval (backoff).
Incidents whose severity has no policy get the default: every channel, then
reminders every ``realert_every`` (×``realert_factor`` each time, capped).

Quiet hours hold back pages below ``min_severity`` until the quiet period ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from monitor.core.severity import Severity
from monitor.core.configtypes import Duration, Frozen, Name, PositiveDuration


class EscalationStep(Frozen):
    after: Duration = Field(default="0s", validate_default=True)  # since the round started
    channels: tuple[str, ...] = Field(min_length=1)


class EscalationPolicy(Frozen):
    name: Name
    severities: tuple[Severity, ...] = Field(min_length=1)
    steps: tuple[EscalationStep, ...] = Field(min_length=1)
    repeat: int = Field(default=2, ge=0)  # further rounds after the first
    repeat_every: PositiveDuration = Field(default="30m", validate_default=True)
    factor: float = Field(default=2.0, ge=1)
    max_interval: PositiveDuration = Field(default="4h", validate_default=True)

    @model_validator(mode="after")
    def _ordered(self) -> "EscalationPolicy":
        afters = [s.after for s in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return self


class QuietHours(Frozen):
    start: time  # local time, e.g. "23:00"
    end: time  # e.g. "07:00" (may be on the next day)
    min_severity: Severity = Severity.II  # at or above this, pages go out anyway


class InhibitRule(Frozen):
    """Hold back signals matching ``target`` while an incident matching ``source`` is open (alerts.inhibition)."""

    source: dict[str, str] = Field(min_length=1)  # labels: topic, rule, rule_type, severity, source
    target: dict[str, str] = Field(min_length=1)
    equal: tuple[str, ...] = ()  # labels that must be the same on both


class IncidentsConfig(Frozen):
    # topic: every rule's signal about a topic joins one incident (one crisis, one page; a worse signal
    # escalates it); topic_rule: one incident per topic and rule (each rule pages on its own)
    group_by: Literal["topic", "topic_rule"] = "topic"
    # while an incident matching `source` is open, signals matching `target` are recorded, not paged
    # (alerts.inhibition); a topic's volume drop is held back while all its sources are failing
    inhibit_rules: tuple[InhibitRule, ...] = ()
    inhibit_on_source_failure: bool = True
    reopen_within: Duration = Field(default="2h", validate_default=True)
    realert_every: PositiveDuration = Field(default="30m", validate_default=True)
    realert_factor: float = Field(default=2.0, ge=1)
    realert_max: PositiveDuration = Field(default="4h", validate_default=True)
    realert_limit: int = Field(default=3, ge=0)
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Schedule:
    """One policy in effect for an incident (``channels`` None = every channel)."""

    steps: tuple[tuple[timedelta, tuple[str, ...] | None], ...]
    repeat: int
    repeat_every: timedelta
    factor: float
    max_interval: timedelta

    def channels(self, step: int) -> tuple[str, ...] | None:
        return self.steps[step][1]

    def next_after(self, step: int, round_: int) -> tuple[int, int, timedelta] | None:
        """After notifying ``step`` of ``round_``: the next (step, round, delay), or None when done."""
        if step + 1 < len(self.steps):
            return step + 1, round_, self.steps[step + 1][0] - self.steps[step][0]
        if round_ < self.repeat:
            delay = min(self.repeat_every * (self.factor ** round_), self.max_interval)
            return 0, round_ + 1, delay
        return None


def schedule_for(severity: Severity, policies: tuple[EscalationPolicy, ...], incidents: IncidentsConfig) -> Schedule:
    for p in policies:
        if severity in p.severities:
            return Schedule(tuple((s.after, s.channels) for s in p.steps), p.repeat, p.repeat_every, p.factor,
                            p.max_interval)
    return Schedule(((timedelta(0), None),), incidents.realert_limit, incidents.realert_every,
                    incidents.realert_factor, incidents.realert_max)


def quiet_hours_note(severity: Severity, until: datetime, tz: str) -> str:
    """The timeline's words for a page held back by quiet hours (first pages and retries alike)."""
    return f"静默时段，{severity.display}通知推迟至 {until.astimezone(ZoneInfo(tz)).strftime('%H:%M')}"


def quiet_until(now: datetime, severity: Severity, quiet: QuietHours | None, tz: str) -> datetime | None:
    """The end of the current quiet period if ``severity`` must wait for it, else None."""
    if quiet is None or severity >= quiet.min_severity:
        return None
    local = now.astimezone(ZoneInfo(tz))
    t = local.time()
    if quiet.start <= quiet.end:
        inside = quiet.start <= t < quiet.end
        end_day = local.date()
    else:  # spans midnight
        inside = t >= quiet.start or t < quiet.end
        end_day = local.date() + timedelta(days=1) if t >= quiet.start else local.date()
    if not inside:
        return None
    end = datetime.combine(end_day, quiet.end, tzinfo=ZoneInfo(tz))
    return end.astimezone(now.tzinfo)
