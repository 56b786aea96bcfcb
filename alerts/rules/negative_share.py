"""negative_share: the share of negative mentions in the current window is above a level.

Per topic, at time ``now``, over the window ``(now - window, now]``::

    share = negatives / mentions      (scored mentions only; unscored ones are not counted)

It fires when ``mentions >= min_total`` (a handful of posts says nothing) and
``share >= min_share``; it recovers once that has been false for ``resolve_after``.

Severity grows with the share and the volume: IV at the threshold; III when the share is at
least ``min_share + 0.15`` with 2× ``min_total`` mentions; II at ``+0.25`` with 5×; I at
``+0.35`` with 20× (shares capped at 1). Crisis words among the window's negatives raise it one
level (cap I).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis, SlidingWindow, WindowTimers, crisis_level, crisis_note, most_negative, \
    raises, with_crisis
from alerts.rules.measurements import NegativeShareMeasurement
from monitor.core.severity import Severity
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention

# (severity, share above min_share, multiple of min_total), highest first
_LEVELS = ((Severity.I, 0.35, 20), (Severity.II, 0.25, 5), (Severity.III, 0.15, 2))


class NegativeShareConfig(RuleConfig):
    type: Literal["negative_share"]
    window: PositiveDuration = Field(default="30m", validate_default=True)
    min_share: float = Field(default=0.5, gt=0, le=1)
    min_total: int = Field(default=20, ge=1)
    resolve_after: PositiveDuration = Field(default="30m", validate_default=True)
    crisis_raise: bool = True


class NegativeShareRule(WindowTimers, Rule):
    config_model = NegativeShareConfig
    config: NegativeShareConfig

    def __init__(self, config: NegativeShareConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        # scored mentions of the window, with running counts: an evaluation never rescans it
        self._recent: SlidingWindow[Mention] = SlidingWindow(config.window)
        self._total = self._negative = self._raising = 0  # raising: negatives with a severity-raising word
        self._state = Hysteresis(config.resolve_after)

    def history_needed(self) -> timedelta:
        return self.config.window

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            if m.label is not None:
                self._recent.add(m.published_at, m)
        entered, left = self._recent.advance(now)
        for _, m in entered:
            self._count(m, 1)
        for m in left:
            self._count(m, -1)
        return self._evaluate(now)

    def _count(self, m: Mention, sign: int) -> None:
        self._total += sign
        if m.is_negative:
            self._negative += sign
            if raises(m):
                self._raising += sign

    def measure(self, now: datetime) -> NegativeShareMeasurement:
        """The figures of the window at ``now`` (running counts at the last evaluation's time)."""
        negative, total = self._negative, self._total
        if now != self._recent.now:
            scored = self._recent.items(now)
            negative, total = sum(1 for m in scored if m.is_negative), len(scored)
        return NegativeShareMeasurement(
            current_negative=negative,
            current_total=total,
            negative_share=round(negative / total, 3) if total else 0.0,
            min_share=self.config.min_share,
            min_total=self.config.min_total,
            window=self.config.window,
        )

    def _severity(self, share: float, total: int) -> Severity:
        cfg = self.config
        for level, above, mult in _LEVELS:
            if share >= min(1.0, cfg.min_share + above) and total >= mult * cfg.min_total:
                return level
        return Severity.IV

    def _evaluate(self, now: datetime) -> list[Match]:
        cfg = self.config
        total, negative = self._total, self._negative
        share = negative / total if total else 0.0
        severity = None
        if total >= cfg.min_total and share >= cfg.min_share:
            severity = crisis_level(self._severity(share, total), self._raising, cfg.crisis_raise)
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        # a page needs the mentions themselves (evidence, crisis words): a scan, once per state change
        negatives = [m for m in self._recent.items() if m.is_negative] if kind == "firing" else []
        words = with_crisis(level, negatives, cfg.crisis_raise)[1]
        n = self.measure(now)
        window = format_duration(cfg.window)
        if kind == "firing":
            reason = (f"「{self.topic}」负面占比过高：近{window}共 {total} 条，负面 {negative} 条，"
                      f"占 {share:.0%}（阈值 {cfg.min_share:.0%}，最少 {cfg.min_total} 条）{crisis_note(words)}")
            n = replace(n, crisis_words=tuple(words))
            evidence = most_negative(negatives)
        else:
            reason = (f"「{self.topic}」负面占比已回落：近{window}共 {total} 条，负面占 {share:.0%}，"
                      f"持续 {format_duration(cfg.resolve_after)} 低于告警线")
            evidence = ()
        return [Match(kind, cfg.name, cfg.type, self.topic, now, level, reason, n, evidence)]
