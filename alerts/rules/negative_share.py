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
from alerts.rules.common import Hysteresis, TimeIndex, crisis_note, most_negative, with_crisis
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


class NegativeShareRule(Rule):
    config_model = NegativeShareConfig
    config: NegativeShareConfig

    def __init__(self, config: NegativeShareConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._recent: TimeIndex[Mention] = TimeIndex()
        self._state = Hysteresis(config.resolve_after)

    def history_needed(self) -> timedelta:
        return self.config.window

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            if m.label is not None:
                self._recent.add(m.published_at, m)
        self._recent.release(now)
        self._recent.prune(now - self.config.window)
        return self._evaluate(now)

    def measure(self, now: datetime) -> NegativeShareMeasurement:
        scored = self._recent.window(now - self.config.window, now)
        negative = sum(1 for m in scored if m.is_negative)
        return NegativeShareMeasurement(
            current_negative=negative,
            current_total=len(scored),
            negative_share=round(negative / len(scored), 3) if scored else 0.0,
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
        scored = self._recent.window(now - cfg.window, now)
        negatives = [m for m in scored if m.is_negative]
        total = len(scored)
        share = len(negatives) / total if total else 0.0
        severity, words = None, []
        if total >= cfg.min_total and share >= cfg.min_share:
            severity, words = with_crisis(self._severity(share, total), negatives, cfg.crisis_raise)
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        n = self.measure(now)
        window = format_duration(cfg.window)
        if kind == "firing":
            reason = (f"「{self.topic}」负面占比过高：近{window}共 {total} 条，负面 {len(negatives)} 条，"
                      f"占 {share:.0%}（阈值 {cfg.min_share:.0%}，最少 {cfg.min_total} 条）{crisis_note(words)}")
            n = replace(n, crisis_words=tuple(words))
            evidence = most_negative(negatives)
        else:
            reason = (f"「{self.topic}」负面占比已回落：近{window}共 {total} 条，负面占 {share:.0%}，"
                      f"持续 {format_duration(cfg.resolve_after)} 低于告警线")
            evidence = ()
        return [Match(kind, cfg.name, cfg.type, self.topic, now, level, reason, n, evidence)]
