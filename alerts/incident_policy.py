"""The incident policy, as pure functions: what a rule match does to its group's incidents, and
when and to whom an incident pages. Records and the time come in, frozen decisions go out; the
:class:`alerts.incidents.IncidentManager` carries them out through the incidents store. The daemon,
``monitor replay`` and the tests all go through it.

- :func:`decide` — one match: open an incident, reopen the group's last one (resolved less than
  ``reopen_within`` ago), add evidence, escalate (severity grew), only note a burst staff already
  resolved (warm-up after a restart), resolve (recovered), or nothing. A group is a topic (every
  rule's signal about one crisis joins one incident, :func:`group_key`) or, with
  ``incidents.group_by: topic_rule``, a topic and rule; the incident keeps the rules firing into it
  (``signals``) and resolves when the last of them recovers.
- :func:`first_page` / :func:`reminder` — paging step 0 of the escalation schedule or the next
  step while nobody acknowledges; quiet hours hold back pages below their minimum severity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Mapping

from alerts.alert import AlertKind
from alerts.escalation import IncidentsConfig, QuietHours, Schedule, quiet_hours_note, quiet_until
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.storage.incidents import Incident

SYSTEM = "system"  # the actor of everything the daemon does by itself

Action = Literal["open", "reopen", "evidence", "escalate", "note", "resolve", "nothing"]


@dataclass(frozen=True)
class Decision:
    """What one match does. ``changes`` are the incident's fields to write (every field for ``open``);
    ``event`` / ``message`` / ``data`` the timeline entry; ``page`` the notification, sent as step 0 of the
    escalation schedule when ``escalate`` (quiet hours may hold it), else at once to ``paged_channels``
    for ``resolved`` and to every channel otherwise."""

    action: Action
    incident_id: int | None = None  # the incident acted on (None: a new one, or nothing)
    changes: Mapping[str, Any] = field(default_factory=dict)
    event: str = ""
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    page: AlertKind | None = None
    escalate: bool = False
    attach_plan: bool = False  # choose the response plan for the (new) severity


NOTHING = Decision("nothing")


def group_key(match: Match, group_by: str = "topic") -> str:
    """The incident group of ``match``: its topic, or topic + rule (``topic_rule``, and always for
    source-scoped rules such as source health, which are about a source, not a crisis)."""
    if group_by == "topic" and match.scope == "topic":
        return match.topic
    return match.group_key


def firing_signals(incident: Incident) -> dict[str, str]:
    """Rule → severity of the rules firing into ``incident`` (older rows: the rule that opened it)."""
    if incident.signals is None:
        return {incident.rule: incident.severity}
    return dict(incident.signals)


def decide(active: Incident | None, last_resolved: Incident | None, match: Match, now: datetime,
           settings: IncidentsConfig, *, replay: bool = False, key: str | None = None) -> Decision:
    """``active``: the group's unresolved incident; ``last_resolved``: its latest resolved one (looked at
    only without an active one); ``replay``: the match comes from warming the rules up after a restart;
    ``key``: the group (:func:`group_key`; default topic + rule)."""
    evidence = {"numbers": match.numbers, "mention_ids": [m.id for m in match.evidence if m.id],
                "rule": match.rule}
    if match.kind == "recovered":
        if active is None:
            return NOTHING
        signals = firing_signals(active)
        if match.rule not in signals:  # a rule whose signal belongs to an earlier incident of the group
            return NOTHING
        del signals[match.rule]
        if signals:  # the crisis goes on: other rules still fire into this incident
            return Decision("evidence", active.id, {"signals": signals, "updated_at": now}, "recovered",
                            f"「{match.rule}」信号已回落，「{'、'.join(signals)}」仍在告警：{match.reason}",
                            {"numbers": match.numbers, "rule": match.rule})
        return Decision("resolve", active.id, {"status": "resolved", "resolved_at": now, "resolved_by": SYSTEM,
                                               "updated_at": now, "next_escalation_at": None, "signals": {}},
                        "resolved", f"自动恢复：{match.reason}", {"numbers": match.numbers}, page="resolved")
    if active is not None:
        return _more_evidence(active, match, now, evidence)
    if last_resolved is not None and last_resolved.resolved_at is not None:
        if replay and handled_in_this_burst(last_resolved, match, now):
            return Decision("note", last_resolved.id, {}, "evidence",
                            f"重启后复核：已处置的事件信号仍在。{match.reason}", evidence)
        if now - last_resolved.resolved_at < settings.reopen_within:
            return _reopen(last_resolved, match, now, evidence)
    opened = {"group_key": key or match.group_key, "signals": {match.rule: match.severity.value}, "topic": match.topic, "rule": match.rule, "rule_type": match.rule_type,
              "severity": match.severity.value, "status": "open", "title": f"「{match.topic}」{match.rule}",
              "reason": match.reason, "numbers": match.numbers, "opened_at": now, "updated_at": now,
              "last_signal_at": now, "reopened_count": 0, "escalation_step": -1, "escalation_round": 0}
    return Decision("open", None, opened, "opened", match.reason, evidence, page="firing", escalate=True,
                    attach_plan=True)


def _more_evidence(active: Incident, match: Match, now: datetime, evidence: dict) -> Decision:
    signals = firing_signals(active)
    signals[match.rule] = max(Severity(signals.get(match.rule, match.severity.value)), match.severity,
                              key=lambda s: s.rank).value
    changes: dict[str, Any] = {"updated_at": now, "last_signal_at": now, "signals": signals}
    if match.rule == active.rule or active.signals is None:
        changes["numbers"] = match.numbers  # the figures shown are the opening rule's; others are on the timeline
    old = Severity(active.severity)
    if match.severity <= old:
        message = match.reason if match.rule == active.rule else f"「{match.rule}」同时告警：{match.reason}"
        return Decision("evidence", active.id, changes, "evidence", message, evidence)
    changes |= {"severity": match.severity.value, "reason": match.reason, "numbers": match.numbers}
    message = f"级别由{old.display}升为{match.severity.display}：{match.reason}"
    if active.status == "acknowledged":  # staff are on it: tell them, but do not restart escalation
        return Decision("escalate", active.id, changes, "escalated", message, evidence, page="escalated",
                        attach_plan=True)
    changes |= {"escalation_step": -1, "escalation_round": 0}
    return Decision("escalate", active.id, changes, "escalated", message, evidence, page="escalated",
                    escalate=True, attach_plan=True)


def _reopen(last: Incident, match: Match, now: datetime, evidence: dict) -> Decision:
    severity = max(match.severity, Severity(last.severity), key=lambda s: s.rank)
    changes = {"status": "open", "resolved_at": None, "resolved_by": None, "acked_at": None, "acked_by": None,
               "signals": {match.rule: match.severity.value},
               "reopened_count": (last.reopened_count or 0) + 1, "updated_at": now, "last_signal_at": now,
               "numbers": match.numbers, "reason": match.reason, "severity": severity.value,
               "escalation_step": -1, "escalation_round": 0}
    return Decision("reopen", last.id, changes, "reopened", f"解决后再次爆发，事件重开：{match.reason}", evidence,
                    page="reopened", escalate=True)


def handled_in_this_burst(last: Incident, match: Match, now: datetime) -> bool:
    """After a restart, a match no worse than ``last`` within the rule's window of its resolution is
    the burst staff already handled."""
    window = match.measurement.window or timedelta(0)
    return now - last.resolved_at < max(window, timedelta(minutes=1)) and match.severity <= Severity(last.severity)


# -- paging --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paging:
    """A page falling due: ``send`` it (``kind``, ``reason``, to ``channels``; None = every channel) or
    hold it; ``changes`` are the escalation fields to write, ``event`` a timeline entry (kind, message, data)."""

    send: bool
    kind: AlertKind
    reason: str
    changes: Mapping[str, Any]
    channels: tuple[str, ...] | None = None
    event: tuple[str, str, dict[str, Any]] | None = None


def first_page(kind: AlertKind, reason: str, severity: Severity, now: datetime, schedule: Schedule,
               quiet: QuietHours | None, tz: str) -> Paging:
    """Step 0 of the schedule now, unless quiet hours hold it back until they end."""
    held = quiet_until(now, severity, quiet, tz)
    if held is not None:
        return Paging(False, kind, reason, {"escalation_step": -1, "escalation_round": 0, "next_escalation_at": held},
                      event=("quiet_hours", quiet_hours_note(severity, held, tz), {}))
    return Paging(True, kind, reason, _advance(schedule, 0, 0, now), schedule.channels(0))


def reminder(incident: Incident, now: datetime, schedule: Schedule, quiet: QuietHours | None, tz: str) -> Paging:
    """The page due for an open incident at ``next_escalation_at``: a first page quiet hours held back,
    or the schedule's next step."""
    severity = Severity(incident.severity)
    if incident.escalation_step < 0:
        return first_page("firing", incident.reason, severity, now, schedule, quiet, tz)
    held = quiet_until(now, severity, quiet, tz)
    if held is not None:
        return Paging(False, "reminder", incident.reason, {"next_escalation_at": held})
    following = schedule.next_after(incident.escalation_step, incident.escalation_round)
    if following is None:
        return Paging(False, "reminder", incident.reason, {"next_escalation_at": None})
    step, round_, _ = following
    channels = schedule.channels(step)
    minutes = int((now - incident.opened_at).total_seconds() // 60)
    message = f"已 {minutes} 分钟无人确认，{'通知 ' + '、'.join(channels) if channels else '再次通知'}"
    return Paging(True, "reminder", f"{message}。{incident.reason}", _advance(schedule, step, round_, now), channels,
                  ("reminder", message, {"step": step, "round": round_}))


def _advance(schedule: Schedule, step: int, round_: int, now: datetime) -> dict[str, Any]:
    following = schedule.next_after(step, round_)
    return {"escalation_step": step, "escalation_round": round_,
            "next_escalation_at": now + following[2] if following else None}


def paged_channels(incident: Incident, schedule: Schedule) -> tuple[str, ...] | None:
    """The channels the incident has paged so far (its 已恢复 notice goes there); None = every channel."""
    names: list[str] = []
    last = max(incident.escalation_step, 0) + 1 if incident.escalation_round == 0 else len(schedule.steps)
    for step in range(last):
        channels = schedule.channels(step)
        if channels is None:
            return None
        names.extend(c for c in channels if c not in names)
    return tuple(names) or None


def occurrence(kind: AlertKind, incident: Incident) -> str:
    """Tells apart pages of one incident with the same kind and severity (``Alert.occurrence``): a
    reminder by its escalation step and round (``s1r0``), every page after a reopening by the reopening
    (``r2``; a reminder then ``s1r0-r2``)."""
    life = f"r{incident.reopened_count}" if incident.reopened_count else ""
    if kind != "reminder":
        return life
    step = f"s{incident.escalation_step}r{incident.escalation_round}"
    return f"{step}-{life}" if life else step
