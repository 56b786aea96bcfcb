"""negative_spike: negative mentions in the current window vs the reference window before it.

Per topic, at time ``now``::

    current   = negatives published in (now - window, now]
    reference = negatives published in (now - window - reference, now - window]
    expected  = max(reference, min_reference) * window / reference_length
    ratio     = current / expected

It fires when the rule is warm (it has seen at least ``warmup`` of history),
``current >= min_current`` and ``ratio >= spike_ratio``. While firing it stays
quiet unless the severity grows; it recovers once the condition has been false
for ``resolve_after``. ``min_reference`` is the baseline floor (negatives per
reference window), so a usually silent topic is not compared with zero;
``min_current`` is what keeps a handful of complaints from paging.

Warm-up counts from the earliest mention seen (stored history replayed after a
restart, or a feed's backlog) or the rule's start, whichever is earlier.

Severity grows with magnitude (multiples of ``min_current`` and ``spike_ratio``):
IV at the threshold, III at 2×/2×, II at 5×/4×, I at 20×/8×.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.severity import Severity
from monitor.configtypes import Duration, PositiveDuration, format_duration
from monitor.domain import Mention

# (severity, multiple of min_current, multiple of spike_ratio), highest first
_LEVELS = ((Severity.I, 20, 8), (Severity.II, 5, 4), (Severity.III, 2, 2))
EVIDENCE_SIZE = 5


class NegativeSpikeConfig(RuleConfig):
    type: Literal["negative_spike"]
    window: PositiveDuration = Field(default="10m", validate_default=True)
    reference: PositiveDuration = Field(default="1h", validate_default=True)
    spike_ratio: float = Field(default=3.0, gt=1)
    min_current: int = Field(default=10, ge=1)
    min_reference: float = Field(default=2.0, gt=0)
    warmup: Duration | None = None  # default: the reference length
    resolve_after: Duration | None = None  # default: the window length

    def problems(self) -> list[str]:
        if self.reference < self.window:
            return [f"reference: must be at least the window ({format_duration(self.window)}), "
                    f"got {format_duration(self.reference)}"]
        return []


class NegativeSpikeRule(Rule):
    config_model = NegativeSpikeConfig
    config: NegativeSpikeConfig

    def __init__(self, config: NegativeSpikeConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._coverage_start = started_at
        self._all: list[datetime] = []  # publish times of every mention, sorted
        self._neg: list[tuple[datetime, int, Mention]] = []  # negatives, sorted by time
        self._seq = 0
        self._firing: Severity | None = None
        self._last_true: datetime | None = None
        self.warmup = config.warmup if config.warmup is not None else config.reference
        self.resolve_after = config.resolve_after if config.resolve_after is not None else config.window

    # -- state ---------------------------------------------------------------
    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            self._coverage_start = min(self._coverage_start, m.published_at)
            bisect.insort(self._all, m.published_at)
            if m.is_negative:
                self._seq += 1
                bisect.insort(self._neg, (m.published_at, self._seq, m), key=lambda e: (e[0], e[1]))
        self._prune(now)
        return self._evaluate(now)

    def _prune(self, now: datetime) -> None:
        horizon = now - self.config.window - self.config.reference
        del self._all[: bisect.bisect_left(self._all, horizon)]
        del self._neg[: bisect.bisect_left(self._neg, horizon, key=lambda e: e[0])]

    # -- evaluation ------------------------------------------------------------
    def _ratio(self, now: datetime) -> tuple[int, int, int, float, float]:
        """Exact (current negatives, current total, reference negatives, expected, ratio)."""
        cfg = self.config
        start = now - cfg.window

        def count(times: list, low: datetime, high: datetime, key=None) -> int:
            # (low, high]; mentions stamped after `now` wait until their time comes
            return bisect.bisect_right(times, high, key=key) - bisect.bisect_right(times, low, key=key)

        first = lambda e: e[0]  # noqa: E731
        cur_neg = count(self._neg, start, now, first)
        ref_neg = count(self._neg, start - cfg.reference, start, first)
        cur_all = count(self._all, start, now)
        expected = max(ref_neg, cfg.min_reference) * (cfg.window / cfg.reference)
        return cur_neg, cur_all, ref_neg, expected, cur_neg / expected

    def measure(self, now: datetime) -> dict:
        """The figures shown in alerts (rounded for people; decisions use the exact ratio)."""
        cur_neg, cur_all, ref_neg, expected, ratio = self._ratio(now)
        return {
            "current_negative": cur_neg,
            "current_total": cur_all,
            "negative_share": round(cur_neg / cur_all, 3) if cur_all else 0.0,
            "reference_negative": ref_neg,
            "expected": round(expected, 2),
            "ratio": round(ratio, 2),
            "window": format_duration(self.config.window),
            "reference": format_duration(self.config.reference),
        }

    def _severity(self, current: int, ratio: float) -> Severity:
        for level, count_mult, ratio_mult in _LEVELS:
            if current >= count_mult * self.config.min_current and ratio >= ratio_mult * self.config.spike_ratio:
                return level
        return Severity.IV

    def history_needed(self) -> timedelta:
        return self.config.window + self.config.reference

    def is_warm(self, now: datetime) -> bool:
        return now - self._coverage_start >= self.warmup

    def _evaluate(self, now: datetime) -> list[Match]:
        cfg = self.config
        current, _, _, _, ratio = self._ratio(now)
        condition = self.is_warm(now) and current >= cfg.min_current and ratio >= cfg.spike_ratio
        n = self.measure(now)
        if condition:
            self._last_true = now
            severity = self._severity(current, ratio)
            if self._firing is None or severity > self._firing:
                self._firing = severity
                return [self._match("firing", now, severity, n)]
            return []
        if self._firing is not None and self._last_true is not None and now - self._last_true >= self.resolve_after:
            severity, self._firing = self._firing, None
            return [self._match("recovered", now, severity, n)]
        return []

    def _match(self, kind: Literal["firing", "recovered"], now: datetime, severity: Severity, n: dict) -> Match:
        if kind == "firing":
            reason = (
                f"「{self.topic}」负面声量激增：近{n['window']}负面 {n['current_negative']} 条"
                f"（占 {n['negative_share']:.0%}），基准约 {n['expected']:g} 条，为基准的 {n['ratio']:g} 倍"
            )
        else:
            reason = (
                f"「{self.topic}」负面声量已回落：近{n['window']}负面 {n['current_negative']} 条，"
                f"持续 {format_duration(self.resolve_after)} 低于告警线"
            )
        start = now - self.config.window
        current = [e[2] for e in self._neg if start < e[0] <= now]
        evidence = tuple(sorted(current, key=lambda m: (m.score if m.score is not None else 0.5))[:EVIDENCE_SIZE])
        return Match(kind, self.config.name, self.config.type, self.topic, now, severity, reason, n, evidence)
