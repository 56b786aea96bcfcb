"""Inhibition (as in Alertmanager): while one incident is open, related signals are recorded, not paged.

A signal and an open incident both have labels — ``topic``, ``rule``, ``rule_type``, ``severity`` and,
for source-scoped rules (source health), ``source``. An :class:`InhibitRule` holds back a signal that
matches its ``target`` labels while an open incident matches its ``source`` labels and both carry the
same values for every label in ``equal``.

Built in (``incidents.inhibit_on_source_failure``, on by default): a ``volume_drop`` signal of a topic
is held back while every source that feeds the topic has an open source-health incident — the
source's page already says why the topic went quiet; a second page would only repeat it.

Pure: labels and incidents in, the inhibiting incident out; :mod:`alerts.incidents` records the
held-back signal on that incident's timeline.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from alerts.escalation import InhibitRule
from alerts.rules.base import Match
from monitor.storage.incidents import Incident

SOURCE_SCOPED = frozenset({"source_health"})  # rule types whose incidents are about a source


__all__ = ["InhibitRule", "inhibitor", "incident_labels", "signal_labels"]


def signal_labels(match: Match) -> dict[str, str]:
    labels = {"rule": match.rule, "rule_type": match.rule_type, "severity": match.severity.value}
    labels["source" if match.scope == "source" else "topic"] = match.topic
    return labels


def incident_labels(incident: Incident) -> dict[str, str]:
    labels = {"rule": incident.rule, "rule_type": incident.rule_type, "severity": incident.severity}
    labels["source" if incident.rule_type in SOURCE_SCOPED else "topic"] = incident.topic
    return labels


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def may_be_inhibited(match: Match, rules: Iterable[InhibitRule], on_source_failure: bool = True) -> bool:
    """Whether any inhibition could apply to ``match`` (cheap: no incident needed)."""
    if match.kind != "firing":
        return False
    if on_source_failure and match.rule_type == "volume_drop":
        return True
    target = signal_labels(match)
    return any(_matches(target, rule.target) for rule in rules)


def inhibitor(match: Match, open_incidents: Sequence[Incident], rules: Iterable[InhibitRule],
              topic_sources: Mapping[str, Sequence[str]] | None = None,
              on_source_failure: bool = True) -> Incident | None:
    """The open incident that holds ``match`` back, if any (only firing signals are held back)."""
    if match.kind != "firing":
        return None
    target = signal_labels(match)
    for rule in rules:
        if not _matches(target, rule.target):
            continue
        for incident in open_incidents:
            labels = incident_labels(incident)
            if _matches(labels, rule.source) and all(labels.get(k) == target.get(k) for k in rule.equal):
                return incident
    if on_source_failure and match.rule_type == "volume_drop" and topic_sources is not None:
        feeding = topic_sources.get(match.topic) or ()
        failing = {i.topic: i for i in open_incidents if i.rule_type in SOURCE_SCOPED}
        if feeding and all(name in failing for name in feeding):
            return failing[feeding[0]]
    return None
