"""negative_spike: negative mentions per bucket vs a rhythm-aware, over-dispersion-aware baseline.

Negatives are counted per ``bucket`` (5 minutes). Each bucket gets a baseline and a robust
z-score (:mod:`alerts.rules.spike_model`): the baseline blends the same time of day on the
previous ``seasonal_days`` days with the median of the trailing ``reference``; the z-score
divides the Pearson residual by the previous day's quasi-Poisson dispersion, so bursty topics
need a larger excess than calm ones. A bucket is *hot* when ``z >= z_threshold``.

At time ``now`` it fires when all of these hold:

* warm: at least ``warmup`` of history has been seen (default: the reference length);
* persistence: the last ``confirm`` buckets were all hot (the bucket in progress counts
  once it is hot — its count can only grow), or one bucket reached ``z_immediate``,
  so one noisy bucket does not page but an unmistakable burst pages at once;
* volume: the current ``window`` (``(now - window, now]``, default one bucket) holds at
  least ``min_current`` negatives, and at least ``spike_ratio`` times the baseline.

While firing it stays quiet unless the severity grows; it recovers once the condition has
been false for ``resolve_after``. Severity grows with the magnitude (multiples of
``min_current`` and ``spike_ratio``): IV at the threshold, III at 2×/2×, II at 5×/4×,
I at 20×/8×; crisis words in the window's negatives raise it one level (cap I).

Defaults were tuned on the NAB Twitter mention series (``tests/bench/bench_spikes.py``).
Counts without mentions (a recorded series) go in through :meth:`NegativeSpikeRule.add_counts`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis, earliest, SlidingWindow, crisis_level, crisis_note, most_negative, raises, \
    with_crisis
from alerts.rules.measurements import NegativeSpikeMeasurement
from alerts.rules.spike_model import DAY, BucketBaseline
from monitor.core.severity import Severity
from monitor.core.configtypes import Duration, PositiveDuration, format_duration
from monitor.core.domain import Mention

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# (severity, multiple of min_current, multiple of spike_ratio), highest first
_LEVELS = ((Severity.I, 20, 8), (Severity.II, 5, 4), (Severity.III, 2, 2))


class NegativeSpikeConfig(RuleConfig):
    type: Literal["negative_spike"]
    bucket: PositiveDuration = Field(default="5m", validate_default=True)
    window: PositiveDuration | None = None  # default: one bucket
    reference: PositiveDuration = Field(default="6h", validate_default=True)
    seasonal_days: int = Field(default=3, ge=0, le=28)
    seasonal_weight: float = Field(default=0.5, ge=0, le=1)
    z_threshold: float = Field(default=6.0, gt=0)
    confirm: int = Field(default=2, ge=1, le=12)
    z_immediate: float | None = Field(default=20.0, gt=0)  # None: always wait for `confirm` buckets
    spike_ratio: float = Field(default=3.0, ge=1)
    min_current: int = Field(default=10, ge=1)
    min_baseline: float = Field(default=0.05, gt=0)  # negatives per bucket
    warmup: Duration | None = None  # default: the reference length
    resolve_after: PositiveDuration = Field(default="30m", validate_default=True)
    crisis_raise: bool = True

    @property
    def current_window(self) -> timedelta:
        return self.window if self.window is not None else self.bucket

    def problems(self) -> list[str]:
        problems = []
        if self.current_window < self.bucket:
            problems.append(f"window: must be at least the bucket ({format_duration(self.bucket)}), "
                            f"got {format_duration(self.current_window)}")
        if self.reference < self.current_window:
            problems.append(f"reference: must be at least the window ({format_duration(self.current_window)}), "
                            f"got {format_duration(self.reference)}")
        if self.seasonal_days and (self.bucket > DAY or DAY % self.bucket):
            problems.append(f"bucket: must divide one day evenly when seasonal_days > 0, "
                            f"got {format_duration(self.bucket)}")
        if self.z_immediate is not None and self.z_immediate <= self.z_threshold:
            problems.append(f"z_immediate: must be above z_threshold ({self.z_threshold:g}), got {self.z_immediate:g}")
        return problems


class NegativeSpikeRule(Rule):
    config_model = NegativeSpikeConfig
    config: NegativeSpikeConfig

    def __init__(self, config: NegativeSpikeConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self.window = config.current_window
        self.warmup = config.warmup if config.warmup is not None else config.reference
        self.resolve_after = config.resolve_after
        # buckets aligned to the clock (multiples of the bucket since the epoch), so that stored
        # per-minute counts fall into whole buckets and every instance counts in the same ones
        origin = EPOCH + (started_at - EPOCH) // config.bucket * config.bucket
        self.model = BucketBaseline(config.bucket, origin, reference=config.reference,
                                    days=config.seasonal_days, seasonal_weight=config.seasonal_weight,
                                    floor=config.min_baseline)
        self._coverage_start = started_at
        self.model.cover(started_at)
        # (negatives, total, the mention or None for recorded counts) by publish time, with running
        # sums over the window: an evaluation never rescans it
        self._recent: SlidingWindow[tuple[int, int, Mention | None]] = SlidingWindow(self.window)
        self._negative = self._total = self._raising = 0
        self._state = Hysteresis(self.resolve_after)

    # -- input -----------------------------------------------------------------------------
    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            self._seen(m.published_at)
            self._recent.add(m.published_at, (1 if m.is_negative else 0, 1, m))
        return self._advance(now)

    def add_counts(self, at: datetime, negative: int, now: datetime, total: int | None = None) -> list[Match]:
        """A recorded count: ``negative`` negatives (of ``total`` mentions) at ``at``; evaluate at ``now``."""
        self._seen(at)
        self._recent.add(at, (negative, negative if total is None else total, None))
        return self._advance(now)

    def add_count(self, minute: datetime, platform: str | None, negative: int, total: int) -> None:
        if self.config.platforms and platform not in self.config.platforms:
            return
        self._seen(minute)
        self._recent.add(minute, (negative, total, None))

    def _seen(self, at: datetime) -> None:
        if at < self._coverage_start:
            self._coverage_start = at
            self.model.cover(at)

    def _advance(self, now: datetime) -> list[Match]:
        entered, left = self._recent.advance(now)
        for at, entry in entered:
            if entry[0]:
                self.model.add(at, entry[0])
            self._sum(entry, 1)
        for entry in left:
            self._sum(entry, -1)
        self.model.prune(now)
        return self._evaluate(now)

    def _sum(self, entry: tuple[int, int, Mention | None], sign: int) -> None:
        negative, total, mention = entry
        self._negative += sign * negative
        self._total += sign * total
        if negative and mention is not None and raises(mention):
            self._raising += sign

    def _window_sums(self, now: datetime) -> tuple[int, int]:
        """(negatives, total) in the window at ``now``: the running sums, or a scan at another time."""
        if now == self._recent.now:
            return self._negative, self._total
        entries = self._recent.items(now)
        return sum(e[0] for e in entries), sum(e[1] for e in entries)

    # -- evaluation ----------------------------------------------------------------------------
    def idle_until(self) -> datetime | None:
        last = self._recent.now
        if last is None:
            return None
        return earliest(self.model.start(self.model.index(last) + 1),  # a new bucket decides afresh
                        self._recent.next_change(), self._state.due(),
                        None if self.is_warm(last) else self._coverage_start + self.warmup)

    def touch(self, now: datetime) -> None:
        self._state.touch(now)

    def history_needed(self) -> timedelta:
        return self.model.history() + self.window

    def mentions_needed(self) -> timedelta:
        # counts are kept per topic and platform, not per source: a rule narrowed to sources replays mentions
        return self.history_needed() if self.config.sources else self.window

    def counts_needed(self) -> timedelta:
        return timedelta(0) if self.config.sources else self.history_needed()

    def is_warm(self, now: datetime) -> bool:
        return now - self._coverage_start >= self.warmup

    def _decision(self, now: datetime) -> tuple[int, float | None, int]:
        """(deciding bucket, its z, consecutive hot buckets ending there).

        The bucket in progress decides once it is hot; before that, the last complete one does.
        """
        cfg = self.config
        i = self.model.index(now)

        def hot(j: int) -> bool:
            z = self.model.z(j)
            return z is not None and z >= cfg.z_threshold

        decisive = i if hot(i) else i - 1
        run = 0
        while run < cfg.confirm and hot(decisive - run):
            run += 1
        return decisive, self.model.z(decisive), run

    def measure(self, now: datetime) -> NegativeSpikeMeasurement:
        """The figures shown in alerts (rounded for people; decisions use exact values)."""
        negative, total = self._window_sums(now)
        mu = self.model.mu(self.model.index(now))
        expected = (mu if mu is not None else self.config.min_baseline) * (self.window / self.config.bucket)
        _, z, run = self._decision(now)
        return NegativeSpikeMeasurement(
            current_negative=negative,
            current_total=total,
            negative_share=round(negative / total, 3) if total else 0.0,
            expected=round(expected, 2),
            ratio=round(negative / expected, 2),
            z=round(z, 1) if z is not None else None,
            hot_buckets=run,
            window=self.window,
            reference=self.config.reference,
        )

    def _severity(self, current: int, ratio: float) -> Severity:
        for level, count_mult, ratio_mult in _LEVELS:
            if current >= count_mult * self.config.min_current and ratio >= ratio_mult * self.config.spike_ratio:
                return level
        return Severity.IV

    def _evaluate(self, now: datetime) -> list[Match]:
        cfg = self.config
        current = self._negative
        mu = self.model.mu(self.model.index(now))
        _, z, run = self._decision(now)
        condition = (
            self.is_warm(now) and mu is not None and z is not None
            and (run >= cfg.confirm or (cfg.z_immediate is not None and z >= cfg.z_immediate))
            and current >= cfg.min_current
            and current >= cfg.spike_ratio * mu * (self.window / cfg.bucket)
        )
        severity = None
        if condition:
            expected = mu * (self.window / cfg.bucket)
            severity = crisis_level(self._severity(current, current / expected), self._raising, cfg.crisis_raise)
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        # a page needs the mentions themselves (evidence, crisis words): a scan, once per state change
        negatives = [e[2] for e in self._recent.items() if e[0] and e[2] is not None] if kind == "firing" else []
        words = with_crisis(level, negatives, cfg.crisis_raise)[1]
        return [self._match(kind, now, level, words, negatives)]

    def _match(self, kind: Literal["firing", "recovered"], now: datetime, severity: Severity,
               words: list[str], negatives: list[Mention]) -> Match:
        n = self.measure(now)
        window = format_duration(self.window)
        if kind == "firing":
            run, bucket = n.hot_buckets, format_duration(self.config.bucket)
            persistence = (f"连续 {run} 个{bucket}周期异常" if run >= self.config.confirm and run > 1
                           else f"{bucket}周期异常" if run >= self.config.confirm else "单周期极端异常")
            reason = (
                f"「{self.topic}」负面声量激增：近{window}负面 {n.current_negative} 条"
                f"（占 {n.negative_share:.0%}），基准约 {n.expected:g} 条，为基准的 {n.ratio:g} 倍，"
                f"异常度 z={n.z:g}（{persistence}）{crisis_note(words)}"
            )
            n = replace(n, crisis_words=tuple(words))
            evidence = most_negative(negatives)
        else:
            reason = (
                f"「{self.topic}」负面声量已回落：近{window}负面 {n.current_negative} 条，"
                f"基准约 {n.expected:g} 条，持续 {format_duration(self.resolve_after)} 低于告警线"
            )
            evidence = ()
        return Match(kind, self.config.name, self.config.type, self.topic, now, severity, reason, n, evidence)
