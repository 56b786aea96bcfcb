"""volume_drop: a topic that is usually talked about falls silent (声量骤降).

Mentions of the topic (all of them, not only negatives) are counted per ``bucket`` (1 hour) against
a rhythm-aware baseline (:class:`HourlyBaseline`: the median of the same bucket and its neighbours
on the previous ``seasonal_days`` days, blended with the median of the trailing ``reference``). It fires when the
last ``confirm`` complete buckets each held at most ``max_ratio`` of their expected count while the
topic normally has at least ``min_expected`` mentions a bucket — so a quiet topic never pages for
being quiet. It recovers once that has been false for ``resolve_after``.

A sudden silence usually means collection broke (a source blocked, a changed page, an expired
token) or, more rarely, that the brand was muted on a platform; both need a person. When the topic's
sources are failing, their source-health incident already says so: the incident manager inhibits
this rule's pages then (``incidents.inhibit_rules``, on by default for this rule).

Severity: ``severity`` (III), one level higher when a confirmed bucket held nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from statistics import median
from typing import ClassVar, Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis, earliest
from alerts.rules.measurements import Measurement
from alerts.rules.spike_model import BucketCounts
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention
from monitor.core.severity import Severity

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class VolumeDropConfig(RuleConfig):
    type: Literal["volume_drop"]
    bucket: PositiveDuration = Field(default="1h", validate_default=True)
    reference: PositiveDuration = Field(default="1d", validate_default=True)
    seasonal_days: int = Field(default=3, ge=0, le=28)
    seasonal_weight: float = Field(default=0.5, ge=0, le=1)
    max_ratio: float = Field(default=0.2, ge=0, lt=1)
    min_expected: float = Field(default=20, gt=0)  # mentions per bucket the topic usually has
    confirm: int = Field(default=2, ge=1, le=24)
    resolve_after: PositiveDuration = Field(default="1h", validate_default=True)
    severity: Severity = Severity.III

    def problems(self) -> list[str]:
        if self.seasonal_days and (self.bucket > timedelta(days=1) or timedelta(days=1) % self.bucket):
            return [f"bucket: must divide one day evenly when seasonal_days > 0, got {format_duration(self.bucket)}"]
        return []


@dataclass(frozen=True, kw_only=True)
class VolumeDropMeasurement(Measurement):
    rule_type: ClassVar[str] = "volume_drop"
    labels: ClassVar[dict[str, str]] = {"current_total": "当前周期总量"}
    current_total: int
    expected: float
    ratio: float
    window: timedelta | None


class HourlyBaseline(BucketCounts):
    """Counts per clock-aligned bucket (:class:`~alerts.rules.spike_model.BucketCounts`) and, for bucket
    ``j``, the expected count from the buckets before it."""

    def __init__(self, bucket: timedelta, origin: datetime, *, reference: timedelta, days: int,
                 seasonal_weight: float, floor: float):
        super().__init__(bucket, origin)
        self.reference_buckets = max(1, reference // bucket)
        self.days, self.per_day = days, max(1, timedelta(days=1) // bucket)
        self.seasonal_weight, self.floor = seasonal_weight, floor
        self._pruned_at: int | None = None

    def horizon(self) -> int:
        """Buckets of history a decision depends on."""
        return (self.days + 1) * self.per_day + self.reference_buckets + 2

    def history(self) -> timedelta:
        return self.horizon() * self.bucket

    def forget_before(self, now: datetime) -> None:
        """Drop the buckets no decision at ``now`` depends on (once a horizon, not every evaluation)."""
        keep_from = self.index(now) - self.horizon()
        if self._pruned_at is None or keep_from - self._pruned_at >= self.horizon():
            self._pruned_at = keep_from
            self.prune(keep_from)

    def mu(self, j: int) -> float | None:
        first = self.first if self.first is not None else j
        trailing = [self.count(i) for i in range(max(j - self.reference_buckets, first), j)]
        seasonal = [self.count(i) for d in range(1, self.days + 1)
                    for i in (j - d * self.per_day - 1, j - d * self.per_day, j - d * self.per_day + 1) if first <= i < j]
        if trailing and seasonal:
            value = self.seasonal_weight * median(seasonal) + (1 - self.seasonal_weight) * median(trailing)
        elif trailing or seasonal:
            value = median(trailing or seasonal)
        else:
            return None
        return max(value, self.floor)


class VolumeDropRule(Rule):
    config_model = VolumeDropConfig
    config: VolumeDropConfig

    def __init__(self, config: VolumeDropConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        origin = EPOCH + (started_at - EPOCH) // config.bucket * config.bucket
        self.model = HourlyBaseline(config.bucket, origin, reference=config.reference, days=config.seasonal_days,
                                    seasonal_weight=config.seasonal_weight, floor=0.01)
        self.model.cover(started_at)
        self._state = Hysteresis(config.resolve_after)
        self._last: datetime | None = None  # when last evaluated

    # -- input: every mention counts, by publication time -------------------------------
    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            self._seen(m.published_at)
            self.model.add(m.published_at)
        self.model.forget_before(now)
        return self._evaluate(now)

    def add_count(self, minute: datetime, platform: str | None, negative: int, total: int,
                  heat: float | None = None) -> None:
        if self.config.platforms and platform not in self.config.platforms:
            return
        self._seen(minute)
        self.model.add(minute, total)

    def _seen(self, at: datetime) -> None:
        if not self.model.known(self.model.index(at)):
            self.model.cover(at)

    def history_needed(self) -> timedelta:
        return self.model.history()

    def mentions_needed(self) -> timedelta:
        return self.history_needed() if self.config.sources else timedelta(0)

    def counts_needed(self) -> timedelta:
        return timedelta(0) if self.config.sources else self.history_needed()

    # -- evaluation: complete buckets only (the one in progress is still filling) ---------
    def _dropped(self, j: int) -> bool:
        mu = self.model.mu(j)
        # a bucket is judged only with a full reference of history before it
        warm = self.model.known(j - self.model.reference_buckets)
        return (warm and mu is not None and mu >= self.config.min_expected
                and self.model.count(j) <= self.config.max_ratio * mu)

    def idle_until(self) -> datetime | None:
        if self._last is None:
            return None
        # complete buckets change only at a boundary
        return earliest(self.model.start(self.model.index(self._last) + 1), self._state.due())

    def touch(self, now: datetime) -> None:
        self._state.touch(now)

    def _evaluate(self, now: datetime) -> list[Match]:
        self._last = now
        last = self.model.index(now) - 1
        confirmed = all(self._dropped(j) for j in range(last - self.config.confirm + 1, last + 1))
        severity = None
        if confirmed:
            silent = any(self.model.count(j) == 0 for j in range(last - self.config.confirm + 1, last + 1))
            severity = self.config.severity.raised(1) if silent else self.config.severity
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        n = self.measure(now)
        bucket = format_duration(self.config.bucket)
        if kind == "firing":
            reason = (f"「{self.topic}」声量骤降：上一个{bucket}周期仅 {n.current_total} 条，基准约 {n.expected:g} 条"
                      f"（{n.ratio:.0%}），已连续 {self.config.confirm} 个周期；可能是数据源故障或采集被封禁")
        else:
            reason = f"「{self.topic}」声量已恢复：上一个{bucket}周期 {n.current_total} 条，基准约 {n.expected:g} 条"
        return [Match(kind, self.config.name, self.config.type, self.topic, now, level, reason, n)]

    def measure(self, now: datetime) -> VolumeDropMeasurement:
        last = self.model.index(now) - 1
        mu = self.model.mu(last) or 0.0
        count = self.model.count(last)
        return VolumeDropMeasurement(current_total=count, expected=round(mu, 1),
                                     ratio=round(count / mu, 3) if mu else 0.0, window=self.config.bucket)
