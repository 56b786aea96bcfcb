"""negative_spike: negatives (or their 舆情热度) far above a robust baseline, at several time scales.

A loud topic's crisis erupts within minutes; a quiet topic's (a median of 0 negatives per 5
minutes) trickles in for hours — 30 complaints where 6 are usual, never 10 in one bucket. One
window with an absolute floor per 5 minutes misses the second, and a floor low enough for it pages
all night on the first. So the rule counts per ``bucket`` (5m) and judges rolling windows of
several lengths, the ``scales``, by the same baseline (:mod:`alerts.rules.spike_model`): per scale
an expected count (the same time of day on previous days, times today's level), a dispersion of
its own (long windows drift more than short ones) and thresholds stated against the expected
count of the window, not in absolute counts. A scale is *hot* when its window holds

* ``z >= z_threshold`` robust standard deviations above the expected count,
* at least ``spike_ratio`` times the expected count, and
* at least ``min_excess`` more than expected (and ``min_count`` in all; 0 by default),

and *fires* once ``confirm`` consecutive windows (a bucket apart) were hot — the window ending in
the bucket in progress counts once it is hot, its sum can only grow — or one reached
``z_immediate``. Defaults: **5m** (z 7, ×3, +8, two in a row or one at z 30; 3 previous days): an
eruption pages within 5–10 minutes, an extreme one at once; **1h** and **2h** (z 6, ×3.5, +20, at
once; 7 previous days): a quiet topic's sustained rise, and an eruption big enough for the hour. The
top-level ``window``, ``z_threshold``, ``confirm``, ``z_immediate``, ``spike_ratio``,
``min_current`` (the old absolute floor: ``min_count``, no ``min_excess``), ``seasonal_days`` and
``seasonal_weight`` set the finest scale, as before there were scales.

Chosen with ``tests/bench/bench_spikes.py`` (README, "Why this spike method") on NAB Twitter
AAPL, GOOG and IBM and synthetic quiet series of seeds 0–3; seeds 4–7 were held out. A 6h scale
hit one more synthetic window for three times the synthetic false pages, a 1d scale nothing more.
``z_immediate: 30`` came after the held-out run, for a page within seconds when a silent topic
erupts (the demo): on the tuning split one more window, +0.02 false pages a day.

``measure: heat`` weighs each negative by its 舆情热度 (:func:`monitor.core.heat.mention_heat`: reach ×
engagement, log-scaled, capped) instead of counting it (thresholds then in heat); its page gives the
window's heat and its top contributors (authors with their heat). Every page names the scale.

The rule fires when any scale fires (after ``warmup``), names the one furthest above its
threshold, takes the highest severity of those firing (multiples of ``min_excess`` — or
``min_count`` — and ``spike_ratio``: IV at the threshold, III at 2×/2×, II at 5×/4×, I at 20×/8×;
crisis words in the window raise it one level, to II at most), stays quiet unless the severity
grows, and recovers once no scale has fired for ``resolve_after`` — after a burst, when it has
left the longest window that fired. A poll costs the same whatever the windows hold: sums come
from per-bucket prefix sums, baselines and dispersions are cached per bucket and hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence

from pydantic import Field, model_validator

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis, SlidingWindow, earliest, crisis_level, crisis_note, most_negative, raises, \
    with_crisis
from alerts.rules.measurements import NegativeSpikeMeasurement
from alerts.rules.spike_model import DAY, BucketCounts, Scale
from monitor.core.configtypes import Duration, Frozen, PositiveDuration, format_duration
from monitor.core.domain import Mention
from monitor.core.heat import mention_heat
from monitor.core.severity import Severity

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # buckets and hours aligned to the clock
# (severity, multiple of min_excess, multiple of spike_ratio), highest first
_LEVELS = ((Severity.I, 20, 8), (Severity.II, 5, 4), (Severity.III, 2, 2))
TOP_CONTRIBUTORS = 3
# top-level keys that set the finest scale's field of the same name (min_current: min_count)
_FINEST = ("window", "z_threshold", "confirm", "z_immediate", "spike_ratio", "seasonal_days", "seasonal_weight")


class SpikeScale(Frozen):
    """One time scale: a rolling window and its thresholds. Unset fields: the finest scale's
    defaults (:data:`FINEST_DEFAULTS`) for the finest, these for the others."""

    window: PositiveDuration
    z_threshold: float = Field(default=6.0, gt=0)
    spike_ratio: float = Field(default=3.5, ge=1)
    min_excess: float = Field(default=20, ge=0)  # negatives (or heat) above the expected
    min_count: float = Field(default=0, ge=0)  # negatives (or heat) in the window
    confirm: int = Field(default=1, ge=1, le=12)
    z_immediate: float | None = Field(default=None, gt=0)
    seasonal_days: int = Field(default=7, ge=0, le=28)
    seasonal_weight: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"window": value} if isinstance(value, str) else value


FINEST_DEFAULTS = dict(z_threshold=7.0, spike_ratio=3.0, min_excess=8, confirm=2, z_immediate=30.0, seasonal_days=3)
LONG_SCALES = ("1h", "2h")


class NegativeSpikeConfig(RuleConfig):
    type: Literal["negative_spike"]
    bucket: PositiveDuration = Field(default="5m", validate_default=True)
    scales: tuple[SpikeScale, ...] | None = None  # default: the bucket (FINEST_DEFAULTS), 1h, 2h
    measure: Literal["count", "heat"] = "count"
    reference: PositiveDuration = Field(default="6h", validate_default=True)
    min_baseline: float = Field(default=0.05, gt=0)  # expected negatives per bucket at least
    warmup: Duration | None = None  # default: the reference length
    resolve_after: PositiveDuration = Field(default="30m", validate_default=True)
    crisis_raise: bool = True
    # the finest scale's settings, as before there were scales (None: its default)
    window: PositiveDuration | None = None
    z_threshold: float | None = Field(default=None, gt=0)
    confirm: int | None = Field(default=None, ge=1, le=12)
    z_immediate: float | None = Field(default=None, gt=0)
    spike_ratio: float | None = Field(default=None, ge=1)
    min_current: int | None = Field(default=None, ge=0)
    seasonal_days: int | None = Field(default=None, ge=0, le=28)
    seasonal_weight: float | None = Field(default=None, ge=0, le=1)

    def effective_scales(self) -> tuple[SpikeScale, ...]:
        """The scales, finest first, with the top-level keys applied to the finest."""
        if self.scales:
            scales = sorted(self.scales, key=lambda s: s.window)
        else:
            scales = [SpikeScale(window=self.bucket)] + [SpikeScale(window=w) for w in LONG_SCALES]
        finest = {key: value for key, value in FINEST_DEFAULTS.items() if key not in scales[0].model_fields_set}
        finest.update({key: getattr(self, key) for key in _FINEST if key in self.model_fields_set})
        if "min_current" in self.model_fields_set:  # the old absolute floor alone, as it was configured
            finest.update(min_count=self.min_current, **({} if "min_excess" in scales[0].model_fields_set
                                                         else {"min_excess": 0}))
        scales[0] = scales[0].model_copy(update=finest)
        if not self.scales:  # the default long scales only when they are longer than the finest
            scales = scales[:1] + [s for s in scales[1:] if s.window > scales[0].window and not s.window % self.bucket]
        return tuple(scales)

    def problems(self) -> list[str]:
        problems = []
        scales = self.effective_scales()
        finest = scales[0].window
        if finest < self.bucket:
            key = "window" if self.window is not None or not self.scales else "scales"
            problems.append(f"{key}: must be at least the bucket ({format_duration(self.bucket)}), "
                            f"got {format_duration(finest)}")
        for s in scales:
            if s.window >= self.bucket and s.window % self.bucket:
                problems.append(f"scales: {format_duration(s.window)} is not a multiple of the bucket "
                                f"({format_duration(self.bucket)})")
            if s.z_immediate is not None and s.z_immediate <= s.z_threshold:
                problems.append(f"z_immediate: must be above z_threshold ({s.z_threshold:g}), got {s.z_immediate:g}")
        if len({s.window for s in scales}) < len(scales):
            problems.append("scales: two scales with the same window")
        if self.reference < finest:
            problems.append(f"reference: must be at least the window ({format_duration(finest)}), "
                            f"got {format_duration(self.reference)}")
        if any(s.seasonal_days for s in scales) and (self.bucket > DAY or DAY % self.bucket):
            problems.append(f"bucket: must divide one day evenly when seasonal_days > 0, "
                            f"got {format_duration(self.bucket)}")
        return problems


@dataclass(frozen=True)
class Reading:
    """One scale at one moment: the deciding window (ending at bucket ``end``) and its figures."""

    scale: int  # position in the rule's scales
    end: int
    value: float | None  # the window's sum of the measure
    expected: float | None
    z: float | None
    run: int  # consecutive hot windows ending at `end`
    fires: bool


class NegativeSpikeRule(Rule):
    config_model = NegativeSpikeConfig
    config: NegativeSpikeConfig

    def __init__(self, config: NegativeSpikeConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self.settings = config.effective_scales()
        self.warmup = config.warmup if config.warmup is not None else config.reference
        self.resolve_after = config.resolve_after
        self.heat = config.measure == "heat"
        bucket = config.bucket
        self.negatives, self.totals, self.raising = (BucketCounts(bucket, EPOCH) for _ in range(3))
        self.heats = BucketCounts(bucket, EPOCH) if self.heat else None
        self.model = self.heats if self.heats is not None else self.negatives
        per_day = max(1, DAY // bucket)
        self.scales = [Scale(self.model, s.window // bucket, reference=config.reference // bucket,
                             days=s.seasonal_days, seasonal_weight=s.seasonal_weight, floor=config.min_baseline,
                             per_day=per_day) for s in self.settings]
        self.longest = max(s.window for s in self.settings)
        self._stores = [store for store in (self.negatives, self.totals, self.raising, self.heats) if store]
        self._coverage_start = started_at
        self._cover(started_at)
        self._pruned_to: int | None = None
        # (negatives, total, heat, raising, the mention or None for recorded counts) by time; the
        # window only delays entries stamped after `now` and keeps the mentions for a page's evidence
        self._recent: SlidingWindow[tuple[int, int, float, int, Mention | None]] = SlidingWindow(self.longest)
        self._state = Hysteresis(self.resolve_after)
        self._episode: int = 0  # the scale that decided the current (or last) episode

    # -- input -----------------------------------------------------------------------------
    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            self._seen(m.published_at)
            negative = 1 if m.is_negative else 0
            heat = mention_heat(m) if negative and self.heat else 0.0
            self._recent.add(m.published_at, (negative, 1, heat, int(negative and raises(m)), m))
        return self._advance(now)

    def add_counts(self, at: datetime, negative: int, now: datetime, total: int | None = None,
                   heat: float | None = None) -> list[Match]:
        """A recorded count: ``negative`` negatives (of ``total`` mentions, of ``heat`` 舆情热度) at ``at``;
        evaluate at ``now``. Without ``heat`` a negative weighs 1."""
        self._seen(at)
        self._recent.add(at, (negative, negative if total is None else total,
                              negative if heat is None else heat, 0, None))
        return self._advance(now)

    def add_count(self, minute: datetime, platform: str | None, negative: int, total: int,
                  heat: float | None = None) -> None:
        """A stored per-minute count (warm-up); ``heat``: the negatives' summed 舆情热度
        (``mention_counts.negative_heat``; without it, with ``measure: heat``, a negative weighs 1)."""
        if self.config.platforms and platform not in self.config.platforms:
            return
        self._seen(minute)
        # straight into the bucket stores: a stored count is older than every window the warm-up replays as
        # mentions, so it would enter them and leave at once — as 100k heap entries at a 1M-row restart
        if negative:
            self.negatives.add(minute, negative)
        self.totals.add(minute, total)
        if self.heats is not None:
            weight = negative if heat is None else heat
            if weight:
                self.heats.add(minute, weight)

    def _seen(self, at: datetime) -> None:
        if at < self._coverage_start:
            self._coverage_start = at
            self._cover(at)

    def _cover(self, at: datetime) -> None:
        for store in self._stores:
            store.cover(at)

    def _advance(self, now: datetime) -> list[Match]:
        entered, _ = self._recent.advance(now)
        for at, (negative, total, heat, raising, _) in entered:
            if negative:
                self.negatives.add(at, negative)
            self.totals.add(at, total)
            if raising:
                self.raising.add(at, raising)
            if self.heats is not None and heat:
                self.heats.add(at, heat)
        self._prune(now)
        return self._evaluate(now)

    def _prune(self, now: datetime) -> None:
        keep_from = self.model.index(now) - max(s.horizon() for s in self.scales)
        if self._pruned_to is not None and keep_from - self._pruned_to < max(1, DAY // self.config.bucket // 24):
            return  # about once an hour of buckets
        self._pruned_to = keep_from
        for store in self._stores:
            store.prune(keep_from)
        for scale in self.scales:
            scale.prune(keep_from)

    # -- evaluation ----------------------------------------------------------------------------
    def idle_until(self) -> datetime | None:
        last = self._recent.now
        if last is None:
            return None
        return earliest(self.model.start(self.model.index(last) + 1),  # every window moves on a bucket boundary
                        self._recent.next_change(), self._state.due(),
                        None if self.is_warm(last) else self._coverage_start + self.warmup)

    def touch(self, now: datetime) -> None:
        self._state.touch(now)

    def history_needed(self) -> timedelta:
        return max(s.horizon() for s in self.scales) * self.config.bucket + self.longest

    def mentions_needed(self) -> timedelta:
        # counts are kept per topic and platform, not per source: a rule narrowed to sources replays mentions
        return self.history_needed() if self.config.sources else self.longest

    def counts_needed(self) -> timedelta:
        return timedelta(0) if self.config.sources else self.history_needed()

    def is_warm(self, now: datetime) -> bool:
        return now - self._coverage_start >= self.warmup

    def reading(self, now: datetime, n: int = 0) -> Reading:
        """Scale ``n`` at ``now``. The window ending in the bucket in progress decides once it is hot;
        before that, the one ending in the last complete bucket does."""
        s, cfg = self.scales[n], self.settings[n]

        def hot(j: int) -> bool:
            z, value, mu = s.z(j), s.window(j), s.mu(j)
            return (z is not None and z >= cfg.z_threshold and value >= cfg.spike_ratio * mu
                    and value - mu >= cfg.min_excess and value >= cfg.min_count)

        i = self.model.index(now)
        end = i if hot(i) else i - 1
        run = 0
        while run < cfg.confirm and hot(end - run):
            run += 1
        z = s.z(end)
        fires = run >= cfg.confirm or (run >= 1 and cfg.z_immediate is not None and z >= cfg.z_immediate)
        return Reading(n, end, s.window(end), s.mu(end), z, run, fires)

    def _severity(self, r: Reading) -> Severity:
        cfg = self.settings[r.scale]
        excess, ratio = r.value - r.expected, r.value / r.expected
        for level, excess_mult, ratio_mult in _LEVELS:
            if excess >= excess_mult * max(cfg.min_excess, cfg.min_count, 1) and ratio >= ratio_mult * cfg.spike_ratio:
                return level
        return Severity.IV

    def _evaluate(self, now: datetime) -> list[Match]:
        readings = [self.reading(now, n) for n in range(len(self.scales))]
        firing = [r for r in readings if r.fires] if self.is_warm(now) else []
        severity = None
        if firing:
            decisive = max(firing, key=lambda r: r.z / self.settings[r.scale].z_threshold)
            if not self._state.firing:
                self._episode = decisive.scale
            raising = max(self.raising.total(r.end, self.scales[r.scale].k) or 0 for r in firing)
            severity = crisis_level(max(self._severity(r) for r in firing), raising, self.config.crisis_raise)
            if self._state.firing and severity > self._state.severity:
                self._episode = decisive.scale  # an escalation names the scale that made it worse
        change = self._state.update(now, severity)
        if change is None:
            return []
        kind, level = change
        reading = readings[self._episode]
        # a page needs the mentions themselves (evidence, crisis words, heat): a scan, once per state change
        negatives = self._window_negatives(reading) if kind == "firing" else []
        words = with_crisis(level, negatives, self.config.crisis_raise)[1]
        return [self._match(kind, now, level, words, negatives, reading)]

    def _window_negatives(self, r: Reading) -> list[Mention]:
        """The negative mentions in the buckets of the reading's window (a scan)."""
        start, end = self.model.start(r.end - self.scales[r.scale].k + 1), self.model.start(r.end + 1)
        return [e[4] for e in self._recent.items() if e[0] and e[4] is not None and start <= e[4].published_at < end]

    # -- figures and pages ---------------------------------------------------------------------
    def measure(self, now: datetime, scale: int | None = None, negatives: Sequence[Mention] = ()
                ) -> NegativeSpikeMeasurement:
        """The figures of scale ``scale`` (default: the one of the current or last episode) at ``now``,
        rounded for people (decisions use exact values); with ``measure: heat``, the top contributors
        among ``negatives``."""
        r = self.reading(now, self._episode if scale is None else scale)
        k = self.scales[r.scale].k
        negative = int(self.negatives.total(r.end, k) or 0)
        total = int(self.totals.total(r.end, k) or 0)
        expected = r.expected if r.expected is not None else self.config.min_baseline * k
        value = r.value or 0.0
        heats: dict[str, float] = {}
        for m in negatives if self.heat else ():  # with measure: count, the incident's summary shows the heat
            author = m.author or "匿名"
            heats[author] = heats.get(author, 0.0) + mention_heat(m)
        top = sorted(heats.items(), key=lambda a: (-a[1], a[0]))[:TOP_CONTRIBUTORS]
        return NegativeSpikeMeasurement(
            current_negative=negative,
            current_total=total,
            negative_share=round(negative / total, 3) if total else 0.0,
            expected=round(expected, 2),
            ratio=round(value / expected, 2),
            z=round(r.z, 1) if r.z is not None else None,
            hot_buckets=r.run,
            window=self.settings[r.scale].window,
            reference=self.config.reference,
            heat=round(value, 1) if self.heat else None,
            top_contributors=tuple(f"{author} {h:.1f}" for author, h in top),
        )

    def _match(self, kind: Literal["firing", "recovered"], now: datetime, severity: Severity,
               words: list[str], negatives: list[Mention], reading: Reading) -> Match:
        n = self.measure(now, reading.scale, negatives)
        cfg = self.settings[reading.scale]
        window = format_duration(cfg.window)
        unit = "热度" if self.heat else "条"
        share = f"占 {n.negative_share:.0%}"
        amount = (f"负面热度 {n.heat:g}（{n.current_negative} 条，{share}）" if self.heat
                  else f"负面 {n.current_negative} 条（{share}）")
        if kind == "firing":
            bucket = format_duration(self.config.bucket)
            if reading.run >= cfg.confirm and cfg.confirm > 1:
                persistence = f"{window}尺度，连续 {reading.run} 个{bucket}步长异常"
            elif reading.run >= cfg.confirm:
                persistence = f"{window}尺度异常"
            else:
                persistence = f"{window}尺度，单周期极端异常"
            reason = (f"「{self.topic}」负面声量激增：近{window}{amount}，基准约 {n.expected:g} {unit}，"
                      f"为基准的 {n.ratio:g} 倍，异常度 z={n.z:g}（{persistence}）"
                      f"{_contributors(n.top_contributors)}{crisis_note(words)}")
            n = replace(n, crisis_words=tuple(words))
            evidence = most_negative(negatives)
        else:
            amount = f"负面热度 {n.heat:g}" if self.heat else f"负面 {n.current_negative} 条"
            reason = (f"「{self.topic}」负面声量已回落：近{window}{amount}，基准约 {n.expected:g} {unit}，"
                      f"持续 {format_duration(self.resolve_after)} 低于告警线")
            evidence = ()
        return Match(kind, self.config.name, self.config.type, self.topic, now, severity, reason, n, evidence)


def _contributors(top: Sequence[str]) -> str:
    return f"，热度主要来自 {'、'.join(top)}" if top else ""
