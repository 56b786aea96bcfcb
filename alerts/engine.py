"""Routes scored mentions to one rule instance per (rule, topic) and collects matches."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Sequence

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.registry import RULES
from monitor.domain import Mention


class RuleEngine:
    def __init__(self, rules: Sequence[RuleConfig], topics: Sequence[str], started_at: datetime):
        self._by_topic: dict[str, list[Rule]] = defaultdict(list)
        for cfg in rules:
            cls = RULES.get(cfg.type)
            for topic in cfg.topics or topics:
                self._by_topic[topic].append(cls(cfg, topic, started_at))

    @property
    def rules(self) -> list[Rule]:
        return [r for rules in self._by_topic.values() for r in rules]

    def history_needed(self) -> timedelta:
        return max((r.history_needed() for r in self.rules), default=timedelta(0))

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        per_topic: dict[str, list[Mention]] = defaultdict(list)
        for m in mentions:
            for topic in m.topics:
                per_topic[topic].append(m)
        matches: list[Match] = []
        for topic, rules in self._by_topic.items():
            batch = per_topic.get(topic, [])
            for rule in rules:
                matches.extend(rule.add_data(batch, now))
        return matches

    def tick(self, now: datetime) -> list[Match]:
        return self.add_data((), now)
