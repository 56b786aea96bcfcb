"""Routes scored mentions to one rule instance per (rule, topic) and collects matches.

A rule sees the mentions of its topic, narrowed to its ``sources`` / ``platforms`` when it
names them (see :meth:`alerts.rules.base.RuleConfig.accepts`).

Source-scoped rules (``scope = "source"``, e.g. ``source_health``) get one instance per
source instead (``sources`` then says which sources) and are fed poll outcomes
(:meth:`RuleEngine.observe_poll`) and time (:meth:`RuleEngine.tick`). Every source that no configured source-scoped rule names (a rule
without ``sources`` names them all) keeps the default ``source_health`` rule (数据源异常).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.registry import RULES
from monitor.core.domain import Mention


class RuleEngine:
    def __init__(self, rules: Sequence[RuleConfig], topics: Sequence[str], started_at: datetime,
                 sources: Sequence[Any] = (), snapshot_sources: Iterable[str] = ()):
        """``sources``: the source configs (``name``, ``expect_every``) for source-scoped rules;
        ``snapshot_sources``: sources read whole every poll (hot lists): their entries are a list's
        state, not people talking — they reach only the rules that take snapshots, never volume."""
        self.snapshot_sources = frozenset(snapshot_sources)
        from alerts.rules.source_health import default_config

        self._by_topic: dict[str, list[Rule]] = defaultdict(list)
        self._by_source: dict[str, list[Any]] = defaultdict(list)
        configs = list(rules)
        # every source keeps the default health rule unless a configured source-scoped rule covers it
        covered: set[str] = set()
        for c in configs:
            if _scope(RULES.get(c.type)) == "source":
                named = getattr(c, "sources", None)
                covered.update(named if named else (s.name for s in sources))
        uncovered = tuple(s.name for s in sources if s.name not in covered)
        if uncovered:
            configs.append(default_config() if len(uncovered) == len(sources)
                           else default_config().model_copy(update={"sources": uncovered}))
        for cfg in configs:
            cls = RULES.get(cfg.type)
            if _scope(cls) == "source":
                for src in sources:
                    if not getattr(cfg, "sources", None) or src.name in cfg.sources:
                        self._by_source[src.name].append(
                            cls(cfg, src.name, started_at, expect_every=getattr(src, "expect_every", None)))
                continue
            for topic in cfg.topics or topics:
                self._by_topic[topic].append(cls(cfg, topic, started_at))

    @property
    def rules(self) -> list[Rule]:
        return [r for rules in self._by_topic.values() for r in rules]

    @property
    def source_rules(self) -> list[Any]:
        return [r for rules in self._by_source.values() for r in rules]

    def observe_poll(self, source: str, ok: bool, error: str | None, stored: int, now: datetime) -> list[Match]:
        """Feed one poll (or push) outcome of ``source`` to its source-scoped rules."""
        matches: list[Match] = []
        for rule in self._by_source.get(source, ()):
            matches.extend(rule.observe_poll(ok, error, stored, now))
        return matches

    def restore_sources(self, states: Iterable[Any], now: datetime) -> list[Match]:
        """Seed source-scoped rules from stored source state rows after a restart; evaluate at ``now``."""
        matches: list[Match] = []
        for st in states:
            for rule in self._by_source.get(st.name, ()):
                rule.restore(failures=st.consecutive_failures or 0, last_error=st.last_error,
                             last_success_at=st.last_success_at, last_item_at=st.last_item_at,
                             first_poll_at=st.first_poll_at)
                matches.extend(rule.tick(now))
        return matches

    def history_needed(self) -> timedelta:
        return max((r.history_needed() for r in self.rules), default=timedelta(0))

    def mentions_needed(self) -> timedelta:
        """How much stored history a restart replays as mentions (the rest comes as counts)."""
        return max((r.mentions_needed() for r in self.rules), default=timedelta(0))

    def counts_needed(self) -> timedelta:
        return max((r.counts_needed() for r in self.rules), default=timedelta(0))

    def count_step(self) -> timedelta:
        """The coarsest step stored counts can be summed to for every rule that takes them (the gcd of
        their buckets, at least a minute): fewer rows to read at a restart."""
        seconds = 0
        for rule in self.rules:
            if rule.counts_needed():
                bucket = getattr(rule.config, "bucket", None)
                seconds = math.gcd(seconds, int(bucket.total_seconds()) if bucket else 60)
        return timedelta(seconds=max(60, math.gcd(seconds, 86400) if seconds else 60) // 60 * 60)

    def add_counts(self, counts: Iterable[Any], before: datetime) -> int:
        """Warm up from stored per-minute counts (``topic``, ``platform``, ``minute``, ``negative``,
        ``total``, ``negative_heat``) of the minutes before ``before``, where the replayed mentions start; no evaluation."""
        takers = {topic: [r for r in rules if r.counts_needed()] for topic, rules in self._by_topic.items()}
        n = 0
        for c in counts:
            if c.minute >= before:
                continue
            for rule in takers.get(c.topic, ()):
                rule.add_count(c.minute, c.platform, c.negative, c.total, heat=c.negative_heat)
            n += 1
        return n

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        per_topic: dict[str, list[Mention]] = defaultdict(list)
        lists: dict[str, list[Mention]] = defaultdict(list)  # hot-list entries (stored ones, at a warm-up)
        for m in mentions:
            for topic in m.topics:
                (lists if m.source in self.snapshot_sources else per_topic)[topic].append(m)
        matches: list[Match] = []
        for topic, rules in self._by_topic.items():
            for rule in rules:
                cfg = rule.config
                batch = (lists if getattr(rule, "takes_snapshots", False) else per_topic).get(topic, [])
                mine = [m for m in batch if cfg.accepts(m)] if (cfg.sources or cfg.platforms) else batch
                if not mine and (idle := rule.idle_until()) is not None and now < idle:
                    rule.touch(now)  # nothing new and no timer due: the evaluation could not change anything
                    continue
                matches.extend(rule.add_data(mine, now))
        return matches

    def observe_snapshot(self, source: str, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        """One whole poll of a hot list (``source``), every entry in list order: each topic's rules that
        take snapshots get the topic's entries in it — none at all is news too (it dropped off)."""
        per_topic: dict[str, list[Mention]] = defaultdict(list)
        for m in mentions:
            for topic in m.topics:
                per_topic[topic].append(m)
        matches: list[Match] = []
        for topic, rules in self._by_topic.items():
            for rule in rules:
                if getattr(rule, "takes_snapshots", False) and (not rule.config.sources or source in rule.config.sources):
                    matches.extend(rule.observe_snapshot(source, per_topic.get(topic, []), now))
        return matches

    def tick(self, now: datetime) -> list[Match]:
        matches = self.add_data((), now)
        for rule in self.source_rules:
            matches.extend(rule.tick(now))
        return matches


def _scope(cls: type) -> str:
    return getattr(cls, "scope", "topic")
