"""negative_spike: pure state machine, times passed in (no clock)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from alerts.rules.negative_spike import NegativeSpikeConfig, NegativeSpikeRule, SpikeScale
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError
from monitor.core.heat import mention_heat
from monitor.core.severity import Severity
from tests.factories import T0, TOPIC, make_mention, negatives, with_crisis_words

MIN = timedelta(minutes=1)
B = timedelta(minutes=5)  # default bucket; T0 is on a bucket (and hour) boundary
S = T0
HALF = B / 2
DAY = 288  # buckets


def config(**overrides) -> NegativeSpikeConfig:
    return NegativeSpikeConfig(**{"name": "负面激增", "type": "negative_spike", **overrides})


def rule(**overrides) -> NegativeSpikeRule:
    return NegativeSpikeRule(config(**overrides), TOPIC, S)


def feed(r: NegativeSpikeRule, counts, first: int = 0, **mention) -> list:
    """Bucket k = first, first+1, …: its negatives mid-bucket, evaluated when the bucket ends."""
    out = []
    for k, count in enumerate(counts, first):
        start = S + k * B
        out.extend(r.add_data(negatives(count, start + HALF, **mention), start + B))
    return out


def calm(r: NegativeSpikeRule, per_bucket: int = 2, buckets: int = 72) -> int:
    """Six hours (the default reference and warm-up) of a steady level; returns the next bucket."""
    assert feed(r, [per_bucket] * buckets) == []
    return buckets


# -- warm-up ---------------------------------------------------------------------------------
def test_no_page_during_warmup_even_for_a_huge_burst_then_pages_once_warm():
    r = rule(warmup="1h", reference="1h", scales=["5m"], confirm=1)  # the long scales need an hour of history
    assert feed(r, [0] * 11) == []
    assert r.add_data(negatives(60, S + 11 * B + MIN), S + 59 * MIN) == []
    assert r.is_warm(S + 59 * MIN) is False

    matches = r.tick(S + 60 * MIN)  # exactly `warmup` after the start; the burst is still in the windows

    assert r.is_warm(S + 60 * MIN) is True
    assert [m.kind for m in matches] == ["firing"]
    assert matches[0].numbers["current_negative"] == 60


def test_warmup_counts_from_the_earliest_mention_seen_so_replayed_history_is_warm_at_once():
    r = rule()
    history = [make_mention(published_at=S - timedelta(hours=7), label="neutral", score=0.5)]
    assert r.add_data(history, S) == []
    assert r.is_warm(S)
    assert [m.kind for m in r.add_data(negatives(25, S + MIN), S + 2 * MIN)] == ["firing"]


# -- the scales ------------------------------------------------------------------------------
def test_a_burst_on_a_silent_topic_pages_at_once_on_the_five_minute_scale():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 2 * MIN
    assert r.add_data(negatives(6, now - MIN), now) == []  # z = 26 < z_immediate 30, alone
    [m] = r.add_data(negatives(6, now), now + MIN)  # the bucket in progress: 12, z = 53
    assert (m.kind, m.severity, m.numbers["window"], m.numbers["current_negative"], m.numbers["expected"]) == (
        "firing", Severity.IV, "5m", 12, 0.05)
    assert "（5m尺度，单周期极端异常）" in m.reason


def test_a_silent_topic_pages_on_the_hour_scale_once_the_excess_is_real_with_exact_numbers_and_reason():
    r = rule(z_immediate=None)  # the finest scale waits for a second hot bucket
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 2 * MIN
    assert r.add_data(negatives(12, now - MIN), now) == []  # 5m: one hot bucket of two; 1h: 12 < 0.6 + 20

    matches = r.add_data(negatives(13, now), now + MIN)  # the bucket in progress: its count can only grow

    [m] = matches
    assert (m.kind, m.rule, m.rule_type, m.topic, m.at, m.severity) == (
        "firing", "负面激增", "negative_spike", TOPIC, now + MIN, Severity.IV)
    z = (25 - 0.6) / math.sqrt(0.6)  # floor: 0.05 per bucket x 12; a silent history has dispersion 1
    assert m.numbers == {"current_negative": 25, "current_total": 25, "negative_share": 1.0, "expected": 0.6,
                         "ratio": 41.67, "z": round(z, 1), "hot_buckets": 1, "window": "1h", "reference": "6h"}
    assert m.reason == ("「品牌A」负面声量激增：近1h负面 25 条（占 100%），基准约 0.6 条，为基准的 41.67 倍，"
                        f"异常度 z={round(z, 1):g}（1h尺度异常）")


def test_two_hot_buckets_in_a_row_page_on_the_five_minute_scale_one_does_not():
    r = rule(z_immediate=None)
    nxt = calm(r, per_bucket=10)  # 10 per bucket: the hour expects 120
    assert feed(r, [40], nxt) == []  # z = 30 / sqrt(10) = 9.5 >= 7, but alone; the hour: 150 < 4 x 120
    assert r.measure(S + (nxt + 1) * B, scale=0).hot_buckets == 1
    assert feed(r, [10, 10, 10], nxt + 1) == []

    matches = feed(r, [40, 40], nxt + 4)  # confirmed at the end of the second

    assert [(m.kind, m.at) for m in matches] == [("firing", S + (nxt + 6) * B)]
    assert matches[0].numbers["window"] == "5m" and matches[0].numbers["hot_buckets"] == 2
    assert "（5m尺度，连续 2 个5m步长异常）" in matches[0].reason


def test_a_quiet_topic_pages_on_a_sustained_rise_that_no_five_minute_bucket_shows():
    """Median 0 per 5 minutes for two days; then 3 per bucket for an hour — never 10 in one bucket."""
    r = rule()
    assert feed(r, [k % 2 for k in range(2 * DAY)]) == []
    matches = feed(r, [3] * 12, 2 * DAY)
    assert [m.kind for m in matches] == ["firing"]
    assert matches[0].numbers["window"] == "1h" and matches[0].numbers["expected"] == 6
    # the old single 5-minute scale with an absolute floor of 10 per bucket never pages on it
    old = rule(scales=["5m"], min_current=10, z_immediate=20)
    assert feed(old, [k % 2 for k in range(2 * DAY)] + [3] * 24) == []


def test_the_page_names_the_scale_furthest_above_its_threshold():
    r = rule(scales=[{"window": "5m", "z_threshold": 6, "confirm": 1, "min_excess": 0},
                     {"window": "30m", "z_threshold": 6, "min_excess": 0}])
    nxt = calm(r, per_bucket=4)
    [m] = feed(r, [40], nxt)
    z5 = 36 / math.sqrt(4)
    z30 = 36 / math.sqrt(24)
    assert m.numbers["window"] == ("5m" if z5 / 6 >= z30 / 6 else "30m") == "5m"


def test_a_burst_at_the_usual_evening_peak_does_not_page_but_the_same_at_night_does():
    """Daily rhythm: four days with 20 per bucket 19:00-21:00 and 2 otherwise."""

    def day_counts():
        return [20 if 19 * 12 <= k < 21 * 12 else 2 for k in range(DAY)]

    r = rule()
    feed(r, day_counts())  # the first evening may page: the rule has not seen a day yet
    assert feed(r, day_counts() * 3, DAY) == []  # after that the evenings are expected
    evening = 4 * DAY + 19 * 12
    assert feed(r, [2] * (19 * 12), 4 * DAY) == []
    assert r.scales[0].mu(r.model.index(S) + evening) == 20  # the same time on previous days; today as usual
    assert feed(r, [20] * 24, evening) == []  # the usual peak: no page
    night = 5 * DAY + 3 * 12
    assert feed(r, [2] * (night - evening - 24), evening + 24) == []
    assert [m.kind for m in feed(r, [20, 20], night)] == ["firing"]  # 20 at 03:00 is a spike


def test_a_busy_day_raises_the_expected_count_by_its_level():
    r = rule(scales=["1h"])
    feed(r, [4] * (3 * DAY))
    i = r.model.index(S) + 3 * DAY + 12 * 12
    feed(r, [7] * (12 * 12), 3 * DAY)  # today runs at 7/4 of the usual since midnight
    hour = r.scales[0]
    assert hour.level(i) == pytest.approx((6 * 12 * 7 + 5) / (6 * 12 * 4 + 5))
    assert hour.mu(i) == pytest.approx(48 * hour.level(i))
    assert feed(r, [9] * 12, 3 * DAY + 12 * 12) == []  # 108 against 83 expected, not 48
    capped = rule(scales=["1h"])
    feed(capped, [4] * (3 * DAY) + [40] * (12 * 12))
    assert capped.scales[0].level(i) == 2  # ten times the usual is a crisis, not a busy day


# -- while firing ----------------------------------------------------------------------------
def test_escalates_once_per_higher_severity_and_never_down():
    r = rule(scales=["5m"], confirm=1)  # the finest scale's defaults
    nxt = calm(r, per_bucket=0)
    at = S + nxt * B
    seen = []
    # finest scale: IV at +8; III at +16 (ratio >= 6); II at +40 (>= 12); I at +160 (>= 24)
    for count, minute in ((10, 1), (5, 2), (5, 3), (30, 4), (150, 4.5)):
        now = at + minute * MIN
        seen.append([(m.kind, m.severity) for m in r.add_data(negatives(count, now), now)])
    assert seen == [[("firing", Severity.IV)], [], [("firing", Severity.III)], [("firing", Severity.II)],
                    [("firing", Severity.I)]]
    assert r.tick(at + 8 * MIN) == []  # the burst fades: no match, the episode stays at I


def test_recovers_once_after_resolve_after_naming_the_scale_and_pages_again_on_a_new_burst():
    r = rule(resolve_after="20m", scales=["5m"], confirm=1)
    nxt = calm(r, per_bucket=0)
    assert [m.kind for m in feed(r, [12], nxt)] == ["firing"]
    last_true = S + (nxt + 1) * B
    assert r.tick(last_true + B) == []
    assert r.tick(last_true + 20 * MIN - timedelta(seconds=1)) == []

    matches = r.tick(last_true + 20 * MIN)

    assert [(m.kind, m.severity, m.evidence) for m in matches] == [("recovered", Severity.IV, ())]
    assert matches[0].reason == "「品牌A」负面声量已回落：近5m负面 0 条，基准约 0.05 条，持续 20m 低于告警线"
    assert r.tick(last_true + 21 * MIN) == []
    later = (last_true + 40 * MIN - S) // B
    assert [m.kind for m in feed(r, [0] * (later - nxt - 1) + [12, 12], nxt + 1)] == ["firing"]


# -- evidence, heat and crisis words -----------------------------------------------------------
def test_evidence_is_the_lowest_scored_negatives_of_the_deciding_window():
    r = rule(scales=[{"window": "10m", "min_excess": 0, "confirm": 1}])
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 4 * MIN
    scores = [0.3, 0.05, 0.2, 0.01, 0.35, 0.15, 0.25, 0.12, 0.33, 0.31, 0.29]
    current = [make_mention(published_at=now - (i % 4) * MIN, score=s) for i, s in enumerate(scores)]
    older = make_mention(published_at=now - 20 * MIN, score=0.0)  # negative, but before the window
    neutral = make_mention(published_at=now - MIN, label="neutral", score=0.0)

    matches = r.add_data([*current, older, neutral], now)

    assert [m.kind for m in matches] == ["firing"]
    assert [m.score for m in matches[0].evidence] == [0.01, 0.05, 0.12, 0.15, 0.2]
    assert matches[0].numbers["current_total"] == 12


def test_a_heat_page_shows_the_windows_heat_and_its_top_contributors():
    r = rule(measure="heat")
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 2 * MIN
    big = make_mention(published_at=now, author="大V甲", author_followers=2_000_000, reposts=5000)
    crowd = [make_mention(published_at=now, author=f"网友{i % 3}") for i in range(24)]
    [m] = r.add_data([big, *crowd], now)
    heat = round(mention_heat(big) + 24, 1)
    assert (m.numbers["heat"], m.numbers["current_negative"]) == (heat, 25)
    assert m.numbers["top_contributors"] == f"大V甲 {mention_heat(big):.1f}、网友0 8.0、网友1 8.0"
    assert m.reason.startswith(f"「品牌A」负面声量激增：近5m负面热度 {heat:g}（25 条，占 100%），")
    assert m.reason.endswith(f"，热度主要来自 大V甲 {mention_heat(big):.1f}、网友0 8.0、网友1 8.0")
    count = rule()
    calm(count, per_bucket=0)
    [m] = count.add_data([big, *crowd], now)
    assert "heat" not in m.numbers and "热度" not in m.reason  # the incident's summary shows it


def test_measure_heat_weighs_one_big_account_above_ten_anonymous_comments():
    def burst(mentions):
        r = rule(measure="heat", scales=[{"window": "5m", "confirm": 1, "min_excess": 15}])
        nxt = calm(r, per_bucket=1)
        return r.add_data(mentions(S + nxt * B + MIN), S + nxt * B + 2 * MIN)

    anonymous = burst(lambda at: negatives(10, at))  # heat 10: 9 above the usual 1, short of 15
    big = burst(lambda at: [make_mention(published_at=at, author="大V甲", author_followers=2_000_000, reposts=5000),
                            make_mention(published_at=at)])
    assert anonymous == []
    [m] = big
    heat = mention_heat(make_mention(author_followers=2_000_000, reposts=5000)) + 1
    assert (m.numbers["current_negative"], m.numbers["heat"], m.numbers["expected"]) == (2, round(heat, 1), 1)
    assert m.reason.startswith(f"「品牌A」负面声量激增：近5m负面热度 {round(heat, 1):g}（2 条，占 100%），基准约 1 热度，")
    assert "热度主要来自 大V甲" in m.reason


def test_crisis_words_in_the_window_raise_severity_one_level_and_can_be_switched_off():
    at = S + 72 * B + MIN
    burst = negatives(9, at) + [with_crisis_words(make_mention(published_at=at), "中毒")]
    r = rule()
    calm(r, per_bucket=0)
    [m] = r.add_data(burst, at + MIN)
    assert m.severity == Severity.III  # IV by magnitude, one up for 中毒
    assert m.reason.endswith("，含危机词「中毒」") and m.numbers["crisis_words"] == "中毒"

    off = rule(crisis_raise=False)
    calm(off, per_bucket=0)
    assert [m.severity for m in off.add_data(burst, at + MIN)] == [Severity.IV]


def test_crisis_raise_is_capped_at_I():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + MIN
    burst = negatives(499, now) + [with_crisis_words(make_mention(published_at=now), "爆炸")]
    assert [m.severity for m in r.add_data(burst, now)] == [Severity.I]


# -- counting ----------------------------------------------------------------------------------
def test_late_and_out_of_order_mentions_count_in_their_own_buckets():
    r = rule(scales=["5m"])
    nxt = calm(r, per_bucket=0)
    a, b = S + nxt * B, S + (nxt + 1) * B
    batch = negatives(12, a + MIN) + negatives(12, b + MIN)
    random.Random(7).shuffle(batch)
    late = r.add_data(batch, b + 2 * MIN)  # both buckets arrive at once, after the first ended
    assert [m.kind for m in late] == ["firing"]
    assert (r.model.count(r.model.index(a)), r.model.count(r.model.index(b))) == (12, 12)


def test_mentions_published_after_now_wait_for_their_time():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + MIN
    ahead = now + timedelta(hours=2)  # e.g. a source with a wrong time zone
    assert r.add_data(negatives(25, ahead), now) == []
    assert r.measure(now, scale=2).current_negative == 0
    assert [m.kind for m in r.tick(ahead + MIN)] == ["firing"]


def test_positive_neutral_and_unscored_count_in_the_total_only():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + (nxt + 1) * B  # the bucket just ended decides
    data = (negatives(4, now - MIN)
            + [make_mention(published_at=now - MIN, label="neutral", score=0.5) for _ in range(3)]
            + [make_mention(published_at=now - MIN, label="positive", score=0.9) for _ in range(2)]
            + [make_mention(published_at=now - MIN, label=None, score=None)])
    assert r.add_data(data, now) == []
    n = r.measure(now, scale=0)
    assert (n.current_negative, n.current_total, n.negative_share) == (4, 10, 0.4)


def test_recorded_counts_drive_the_same_rule_with_their_heat():
    r = rule()
    for k in range(72):
        assert r.add_counts(S + k * B + HALF, 2, now=S + (k + 1) * B) == []
    assert r.add_counts(S + 72 * B + HALF, 40, now=S + 73 * B, total=50) == []
    [m] = r.add_counts(S + 73 * B + HALF, 40, now=S + 74 * B, total=50)
    assert (m.kind, m.numbers["window"], m.numbers["current_negative"], m.numbers["current_total"], m.evidence) == (
        "firing", "5m", 40, 50, ())
    assert "heat" not in m.numbers  # no mentions to weigh

    hot = rule(measure="heat", z_immediate=None)
    for k in range(72):
        hot.add_counts(S + k * B + HALF, 2, now=S + (k + 1) * B, heat=3.0)
    [m] = hot.add_counts(S + 72 * B + HALF, 5, now=S + 73 * B, heat=400.0)
    # the hour ending in the bucket in progress (already hot): buckets 62-73
    assert (m.numbers["window"], m.numbers["current_negative"], m.numbers["heat"]) == ("1h", 25, 430.0)


def test_stored_minute_counts_warm_the_rule_up_and_respect_its_platforms():
    r = rule(platforms=["weibo"], measure="heat")
    for k in range(72 * 5):
        r.add_count(S + k * MIN, "weibo", 1, 3, heat=2.5)
        r.add_count(S + k * MIN, "douyin", 50, 50, heat=100.0)
    assert r.tick(S + 72 * B) == []
    n = r.measure(S + 72 * B, scale=1)
    assert (n.current_negative, n.current_total, n.heat) == (60, 180, 150.0)


def test_a_restarted_rule_fed_the_stored_history_reaches_the_same_state():
    history = [m for k in range(72) for m in negatives(2, S + k * B + HALF)] + negatives(100, S + 72 * B + MIN)
    now = S + 72 * B + 3 * MIN
    first = rule()
    [m1] = first.add_data(history, now)
    later = NegativeSpikeRule(config(), TOPIC, now + MIN)
    [m2] = later.add_data(history, now + MIN)
    assert (m1.kind, m1.severity, m1.numbers["z"]) == (m2.kind, m2.severity, m2.numbers["z"])


def test_history_needed_covers_the_seasonal_days_their_level_and_the_dispersion_day():
    assert timedelta(days=8, hours=12) <= rule().history_needed() < timedelta(days=9)
    assert rule().mentions_needed() == timedelta(hours=2)  # the longest window: the page's evidence
    assert rule(sources=["weibo"]).mentions_needed() == rule().history_needed()
    single = rule(scales=[{"window": "5m", "seasonal_days": 0}], reference="1h")
    assert timedelta(days=1, hours=1) <= single.history_needed() < timedelta(days=1, hours=3)


def test_idle_until_the_next_bucket_boundary():
    r = rule()
    calm(r, per_bucket=0)
    r.add_data(negatives(1, S + 72 * B + MIN), S + 72 * B + 2 * MIN)
    assert r.idle_until() == S + 73 * B


# -- configuration -----------------------------------------------------------------------------
def test_defaults_are_the_tuned_ones():
    c = config()
    assert (c.bucket, c.reference, c.measure, c.min_baseline) == (B, timedelta(hours=6), "count", 0.05)
    assert c.effective_scales() == (
        SpikeScale(window="5m", z_threshold=7, spike_ratio=3, min_excess=8, confirm=2, z_immediate=30,
                   seasonal_days=3),
        SpikeScale(window="1h", z_threshold=6, spike_ratio=3.5, min_excess=20, confirm=1, seasonal_days=7),
        SpikeScale(window="2h", z_threshold=6, spike_ratio=3.5, min_excess=20, confirm=1, seasonal_days=7))
    r = rule()
    assert (r.warmup, r.resolve_after) == (timedelta(hours=6), timedelta(minutes=30))


def test_top_level_keys_tune_the_finest_scale_and_scales_may_be_written_as_durations():
    c = config(bucket="10m", window="30m", z_threshold=5, confirm=1, min_current=6, seasonal_days=1)
    assert [(s.window, s.z_threshold, s.confirm, s.min_count, s.seasonal_days) for s in c.effective_scales()] == [
        (timedelta(minutes=30), 5, 1, 6, 1), (timedelta(hours=1), 6, 1, 0, 7), (timedelta(hours=2), 6, 1, 0, 7)]
    own = config(scales=["1h", {"window": "5m", "confirm": 3}], z_immediate=30)
    assert [(s.window, s.z_threshold, s.confirm, s.z_immediate) for s in own.effective_scales()] == [
        (B, 7, 3, 30), (timedelta(hours=1), 6, 1, None)]  # finest first, with the finest defaults


@pytest.mark.parametrize(("overrides", "problem"), [
    (dict(bucket="10m", window="5m"), "window: must be at least the bucket (10m), got 5m"),
    (dict(scales=["1h"], reference="30m"), "reference: must be at least the window (1h), got 30m"),
    (dict(bucket="7m"), "bucket: must divide one day evenly when seasonal_days > 0, got 7m"),
    (dict(z_threshold=8, z_immediate=8), "z_immediate: must be above z_threshold (8), got 8"),
    (dict(scales=["5m", "12m"]), "scales: 12m is not a multiple of the bucket (5m)"),
    (dict(scales=["1h", "60m"]), "scales: two scales with the same window"),
])
def test_config_problems_name_the_field(overrides, problem):
    assert config(**overrides).problems() == [problem]


def test_config_without_problems():
    assert config().problems() == []
    assert config(bucket="7m", scales=[{"window": "7m", "seasonal_days": 0}]).problems() == []
    assert config(scales=["10m", "1d"], measure="heat").problems() == []


def test_config_loader_reports_rule_problems_with_their_path():
    text = """
topics:
  - name: 品牌A
    keywords: [品牌A]
rules:
  - name: 负面激增
    type: negative_spike
    bucket: 10m
    window: 5m
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert info.value.problems == ["config.yaml: rules[0].window: must be at least the bucket (10m), got 5m"]
