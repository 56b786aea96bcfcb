"""influencer: a negative mention by an author with many followers (a 大V) pages at once.

A mention qualifies when it is negative (``labels``, default ``[negative]``) and its author has
at least ``min_followers`` followers (``Mention.author_followers``; mentions whose source does
not say are skipped). Severity grows with the reach: IV at ``min_followers``, III at 5×, II at
20×, I at 100×; crisis words in the mention raise it one level (cap I).

Every batch with qualifying mentions answers a ``firing`` match with them as evidence (the
incident pages on the first, escalates on a bigger voice, records the others); it recovers
once none has been seen for ``resolve_after``. Mentions published more than ``resolve_after``
before ``now`` (backlog, replayed history) are ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import FOREVER, Match, Rule, RuleConfig
from alerts.rules.common import EVIDENCE_SIZE, Hysteresis, earliest, TimeIndex, crisis_note, crisis_words, level_for, \
    with_crisis
from alerts.rules.measurements import InfluencerMeasurement
from monitor.core.severity import Severity
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention

MULTIPLES = (5, 20, 100)  # III, II, I


def followers(mention: Mention) -> int | None:
    value = getattr(mention, "author_followers", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def reach(count: int) -> str:
    return f"{count / 10000:.4g}万" if count >= 10000 else str(count)


class InfluencerConfig(RuleConfig):
    type: Literal["influencer"]
    min_followers: int = Field(default=100_000, ge=1)
    labels: tuple[Literal["negative", "neutral", "positive"], ...] = ("negative",)
    resolve_after: PositiveDuration = Field(default="1h", validate_default=True)
    crisis_raise: bool = True


class InfluencerRule(Rule):
    config_model = InfluencerConfig
    config: InfluencerConfig

    def __init__(self, config: InfluencerConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._pending: TimeIndex[Mention] = TimeIndex()
        self._state = Hysteresis(config.resolve_after)

    def idle_until(self) -> datetime | None:
        if self._state.holds:  # a hit holds only for its batch: the next evaluation ends it
            return None
        # without new data nothing hits: only a waiting mention's time or the recovery delay can matter
        return earliest(self._pending.next_time(), self._state.due()) or FOREVER

    def history_needed(self) -> timedelta:
        return self.config.resolve_after

    def qualifies(self, m: Mention) -> bool:
        count = followers(m)
        return m.label in self.config.labels and count is not None and count >= self.config.min_followers

    def severity(self, m: Mention) -> Severity:
        base = level_for(followers(m) / self.config.min_followers, MULTIPLES)
        return with_crisis(base, [m], self.config.crisis_raise)[0]

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            if self.qualifies(m):
                self._pending.add(m.published_at, m)
        fresh = [m for at, m in self._pending.release(now) if now - at < self.config.resolve_after]
        self._pending.prune(now)
        if not fresh:
            change = self._state.update(now, None)
            if change is None:
                return []
            reason = (f"「{self.topic}」大V负面告警已平息：{format_duration(self.config.resolve_after)}内"
                      f"未再出现粉丝 {reach(self.config.min_followers)} 以上作者的负面内容")
            return [Match("recovered", self.config.name, self.config.type, self.topic, now, change[1], reason,
                          InfluencerMeasurement(window=self.config.resolve_after))]
        ranked = sorted(fresh, key=lambda m: (-self.severity(m).rank, -followers(m), m.published_at))
        top = ranked[0]
        severity = self.severity(top)
        self._state.update(now, severity)
        words = crisis_words(top)
        more = f"（本批共 {len(fresh)} 条）" if len(fresh) > 1 else ""
        text = " ".join(top.text.split())
        reason = (f"「{self.topic}」大V发布负面内容：{top.author or '未知作者'}（粉丝 {reach(followers(top))}）："
                  f"{text[:40] + '…' if len(text) > 40 else text}{crisis_note(words)}{more}")
        measured = InfluencerMeasurement(followers=followers(top), min_followers=self.config.min_followers,
                                         count=len(fresh), window=self.config.resolve_after, crisis_words=words)
        return [Match("firing", self.config.name, self.config.type, self.topic, now, severity, reason, measured,
                      tuple(ranked[:EVIDENCE_SIZE]))]
