"""frequency: at least ``count`` matching mentions within ``window`` (ElastAlert's frequency rule).

A mention *matches* when it passes every filter that is set: ``labels`` (sentiment labels,
e.g. ``[negative]``), ``terms`` (its text contains any of them, case-insensitive) and
``max_score`` (sentiment score at most this). With no filter every mention of the topic counts.

It fires when ``(now - window, now]`` holds at least ``count`` matching mentions and recovers
once that has been false for ``resolve_after``. Severity grows with the multiple of ``count``:
IV at 1×, III at 2×, II at 5×, I at 20×; crisis words among the matching mentions raise it one
level (cap I).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis, SlidingWindow, WindowTimers, crisis_level, crisis_note, level_for, \
    most_negative, raises, with_crisis
from alerts.rules.measurements import FrequencyMeasurement
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention

MULTIPLES = (2, 5, 20)  # III, II, I
LABEL_NAMES = {"negative": "负面", "neutral": "中性", "positive": "正面"}


class FrequencyConfig(RuleConfig):
    type: Literal["frequency"]
    count: int = Field(ge=1)
    window: PositiveDuration = Field(default="10m", validate_default=True)
    labels: tuple[Literal["negative", "neutral", "positive"], ...] | None = None
    terms: tuple[str, ...] = ()
    max_score: float | None = Field(default=None, ge=0, le=1)
    resolve_after: PositiveDuration = Field(default="30m", validate_default=True)
    crisis_raise: bool = True


class FrequencyRule(WindowTimers, Rule):
    config_model = FrequencyConfig
    config: FrequencyConfig

    def __init__(self, config: FrequencyConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._terms = tuple(t.strip().lower() for t in config.terms if t.strip())
        # matching mentions of the window, with running counts: an evaluation never rescans it
        self._recent: SlidingWindow[Mention] = SlidingWindow(config.window)
        self._count = self._raising = 0
        self._state = Hysteresis(config.resolve_after)

    def history_needed(self) -> timedelta:
        return self.config.window

    def matches(self, m: Mention) -> bool:
        cfg = self.config
        if cfg.labels is not None and m.label not in cfg.labels:
            return False
        if cfg.max_score is not None and (m.score is None or m.score > cfg.max_score):
            return False
        if self._terms:
            text = f"{m.title or ''}\n{m.text}".lower()
            if not any(t in text for t in self._terms):
                return False
        return True

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            if self.matches(m):
                self._recent.add(m.published_at, m)
        entered, left = self._recent.advance(now)
        for _, m in entered:
            self._count += 1
            self._raising += raises(m)
        for m in left:
            self._count -= 1
            self._raising -= raises(m)
        return self._evaluate(now)

    def what(self) -> str:
        cfg = self.config
        parts = []
        if cfg.labels:
            parts.append("/".join(LABEL_NAMES[label] for label in cfg.labels))
        if self._terms:
            parts.append(f"含「{'、'.join(cfg.terms[:3])}」")
        return "".join(parts) + "提及" if parts else "提及"

    def _evaluate(self, now: datetime) -> list[Match]:
        cfg = self.config
        n = self._count
        severity = None
        if n >= cfg.count:
            severity = crisis_level(level_for(n / cfg.count, MULTIPLES), self._raising, cfg.crisis_raise)
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        # a page needs the mentions themselves (evidence, crisis words): a scan, once per state change
        current = self._recent.items() if kind == "firing" else []
        words = with_crisis(level, current, cfg.crisis_raise)[1]
        measured = FrequencyMeasurement(count=n, threshold=cfg.count, window=cfg.window, crisis_words=tuple(words))
        if kind == "firing":
            reason = (f"「{self.topic}」{self.what()}频繁：近{format_duration(cfg.window)} {n} 条，"
                      f"达到阈值 {cfg.count} 条的 {n / cfg.count:.3g} 倍{crisis_note(words)}")
            evidence = most_negative(current)
        else:
            reason = (f"「{self.topic}」{self.what()}已回落：近{format_duration(cfg.window)} {n} 条，"
                      f"持续 {format_duration(cfg.resolve_after)} 低于阈值 {cfg.count} 条")
            evidence = ()
        return [Match(kind, cfg.name, cfg.type, self.topic, now, level, reason, measured, evidence)]
