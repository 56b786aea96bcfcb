"""negative_spike: pure state machine, times passed in (no clock)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from alerts.rules.negative_spike import NegativeSpikeConfig, NegativeSpikeRule
from monitor.core.severity import Severity
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError
from tests.factories import T0, TOPIC, make_mention, negatives, with_crisis_words

MIN = timedelta(minutes=1)
B = timedelta(minutes=5)  # default bucket
S = T0  # rule start; buckets are aligned to it
HALF = B / 2


def config(**overrides) -> NegativeSpikeConfig:
    return NegativeSpikeConfig(**{"name": "负面激增", "type": "negative_spike", **overrides})


def rule(**overrides) -> NegativeSpikeRule:
    return NegativeSpikeRule(config(**overrides), TOPIC, S)


def feed(r: NegativeSpikeRule, counts, first: int = 0) -> list:
    """Bucket k = first, first+1, …: its negatives mid-bucket, evaluated when the bucket ends."""
    out = []
    for k, count in enumerate(counts, first):
        start = S + k * B
        out.extend(r.add_data(negatives(count, start + HALF), start + B))
    return out


def calm(r: NegativeSpikeRule, per_bucket: int = 2, buckets: int = 72) -> int:
    """Six hours (the default reference and warm-up) of a steady level; returns the next bucket."""
    assert feed(r, [per_bucket] * buckets) == []
    return buckets


# -- warm-up ---------------------------------------------------------------------------------
def test_no_page_during_warmup_even_for_a_huge_burst_then_pages_once_warm():
    r = rule(warmup="1h", reference="1h", window="10m")
    assert feed(r, [0] * 11) == []
    burst = S + 11 * B + MIN
    assert r.add_data(negatives(40, burst), S + 59 * MIN) == []
    assert r.is_warm(S + 59 * MIN) is False
    assert r.measure(S + 59 * MIN).current_negative == 40

    matches = r.tick(S + 60 * MIN)  # exactly `warmup` after the start; the burst is still in the window

    assert r.is_warm(S + 60 * MIN) is True
    assert [(m.kind, m.severity) for m in matches] == [("firing", Severity.III)]  # 40 >= 2x10, ratio >= 2x3; < 5x10


def test_warmup_counts_from_the_earliest_mention_seen_so_replayed_history_is_warm_at_once():
    r = rule()
    history = [make_mention(published_at=S - timedelta(hours=7), label="neutral", score=0.5)]
    assert r.add_data(history, S) == []
    assert r.is_warm(S)
    assert [m.kind for m in r.add_data(negatives(12, S + MIN), S + 2 * MIN)] == ["firing"]


# -- firing: immediate, confirmed, and not at all ------------------------------------------
def test_a_burst_on_a_silent_topic_pages_at_once_with_exact_numbers_and_reason():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 2 * MIN  # the bucket is in progress: its count so far is enough

    matches = r.add_data(negatives(12, now - MIN), now)

    assert len(matches) == 1
    m = matches[0]
    assert (m.kind, m.rule, m.rule_type, m.topic, m.at, m.severity) == (
        "firing", "负面激增", "negative_spike", TOPIC, now, Severity.IV)
    z = (12 - 0.05) / math.sqrt(0.05)  # floor min_baseline 0.05; a silent history has dispersion 1
    assert m.numbers == {"current_negative": 12, "current_total": 12, "negative_share": 1.0, "expected": 0.05,
                         "ratio": 240.0, "z": round(z, 1), "hot_buckets": 1, "window": "5m", "reference": "6h"}
    assert m.reason == ("「品牌A」负面声量激增：近5m负面 12 条（占 100%），基准约 0.05 条，为基准的 240 倍，"
                        "异常度 z=53.4（单周期极端异常）")


def test_one_noisy_bucket_does_not_page_two_in_a_row_do():
    r = rule()
    nxt = calm(r)  # 2 per bucket: baseline 2, dispersion 1
    assert r.model.phi(nxt) == 1.0

    assert feed(r, [14], nxt) == []  # z = 12 / sqrt(2) = 8.5: hot (>= 6), short of z_immediate (20)
    assert r.measure(S + (nxt + 1) * B).hot_buckets == 1
    assert feed(r, [2, 2, 2], nxt + 1) == []

    matches = feed(r, [16, 16], nxt + 4)  # two consecutive: confirmed at the end of the second

    assert [(m.kind, m.at, m.severity) for m in matches] == [("firing", S + (nxt + 6) * B, Severity.IV)]
    assert matches[0].numbers["hot_buckets"] == 2 and 6 <= matches[0].numbers["z"] < 20
    assert "连续 2 个5m周期异常" in matches[0].reason


def test_a_burst_raises_the_dispersion_so_the_next_day_needs_a_bigger_excess():
    r = rule()
    nxt = calm(r)
    assert feed(r, [2, 60, 2], nxt)[0].kind == "firing"  # z = 41: at once
    after = nxt + 3
    assert [m.kind for m in feed(r, [2] * 12, after)] == ["recovered"]
    residual = (60 - 2) / math.sqrt(2)
    expected_phi = math.sqrt(residual ** 2 / (after + 11))  # one big residual among zeros (bucket 0 has no baseline)
    assert r.model.phi(after + 12) == pytest.approx(expected_phi)
    assert expected_phi > 4  # (16 - 2) / sqrt(2) / phi < 6: a 16 is no longer hot today


def test_bucket_in_progress_confirms_as_soon_as_it_is_hot():
    r = rule()
    nxt = calm(r)
    assert feed(r, [14], nxt) == []
    start = S + (nxt + 1) * B
    assert r.add_data(negatives(10, start + MIN), start + MIN) == []  # (10-2)/1.41 = 5.7: not hot yet
    matches = r.add_data(negatives(2, start + 2 * MIN), start + 2 * MIN)  # 12: 7.1, hot
    assert [(m.kind, m.at) for m in matches] == [("firing", start + 2 * MIN)]


def test_confirm_1_pages_on_a_single_hot_bucket_and_z_immediate_none_always_waits():
    eager = rule(confirm=1)
    assert [m.kind for m in feed(eager, [14], calm(eager))] == ["firing"]
    patient = rule(z_immediate=None)
    nxt = calm(patient, per_bucket=0)
    assert feed(patient, [50], nxt) == []
    assert [m.kind for m in feed(patient, [50], nxt + 1)] == ["firing"]


def test_min_current_keeps_a_handful_of_complaints_from_paging():
    r = rule()
    nxt = calm(r, per_bucket=0)
    assert feed(r, [9], nxt) == []  # z = 40 on a silent topic, but 9 < min_current 10
    assert r.measure(S + (nxt + 1) * B).hot_buckets == 1
    assert [m.kind for m in feed(r, [10], nxt + 1)] == ["firing"]  # confirmed by the 9 before it


def test_spike_ratio_is_required_of_the_current_window():
    r = rule(z_threshold=1, confirm=1, min_current=1)
    nxt = calm(r)  # baseline 2 per window
    assert feed(r, [5], nxt) == []  # z 2.1 is hot, but 5 < 3 x 2
    assert r.measure(S + (nxt + 1) * B).ratio == 2.5
    assert [m.kind for m in feed(r, [6], nxt + 1)] == ["firing"]  # exactly 3x


def test_a_burst_at_the_usual_evening_peak_does_not_page_but_the_same_at_night_does():
    """Daily rhythm: three days with 20 per bucket 19:00-21:00 and 2 otherwise."""
    day = 288

    def day_counts():
        return [20 if 19 * 12 <= k < 21 * 12 else 2 for k in range(day)]

    r = rule()
    feed(r, day_counts())  # the first evening may page: the rule has not seen a day yet
    assert feed(r, day_counts() * 2, day) == []  # after that the evenings are expected
    evening = 3 * day + 19 * 12
    assert feed(r, [2] * (19 * 12), 3 * day) == []
    assert r.model.mu(evening) == 0.5 * 20 + 0.5 * 2  # same time on previous days, blended with the last 6h
    assert feed(r, [20] * 24, evening) == []  # the usual peak: no page
    night = 4 * day + 3 * 12
    assert feed(r, [2] * (night - evening - 24), evening + 24) == []
    assert [m.kind for m in feed(r, [20, 20], night)] == ["firing"]  # 20 at 03:00 is a spike

    # Without the time-of-day part the evenings inflate the dispersion and the night burst is missed.
    flat = rule(seasonal_days=0)
    feed(flat, day_counts() * 3 + [2] * (19 * 12) + [20] * 24 + [2] * (night - evening - 24))
    assert feed(flat, [20, 20], night) == []


# -- while firing ----------------------------------------------------------------------------
def test_escalates_once_per_higher_severity_and_never_down():
    r = rule()
    nxt = calm(r, per_bucket=0)
    at = S + nxt * B
    seen = []
    # IV at 10; III at >=20 (ratio >= 6); II at >=50 (ratio >= 12); I at >=200 (ratio >= 24)
    for count, minute in ((10, 1), (5, 2), (5, 3), (30, 4), (150, 4.5)):
        now = at + minute * MIN
        seen.append([(m.kind, m.severity) for m in r.add_data(negatives(count, now), now)])
    assert seen == [[("firing", Severity.IV)], [], [("firing", Severity.III)], [("firing", Severity.II)],
                    [("firing", Severity.I)]]
    assert r.tick(at + 8 * MIN) == []  # the burst fades: no match, the episode stays at I


def test_recovers_once_after_resolve_after_and_pages_again_on_a_new_burst():
    r = rule(resolve_after="20m")
    nxt = calm(r, per_bucket=0)
    assert [m.kind for m in feed(r, [12], nxt)] == ["firing"]
    last_true = S + (nxt + 1) * B
    assert r.tick(last_true + B) == []  # the next bucket is quiet: false from here
    assert r.tick(last_true + 20 * MIN - timedelta(seconds=1)) == []

    matches = r.tick(last_true + 20 * MIN)

    assert [(m.kind, m.severity, m.evidence) for m in matches] == [("recovered", Severity.IV, ())]
    assert matches[0].reason == "「品牌A」负面声量已回落：近5m负面 0 条，基准约 0.05 条，持续 20m 低于告警线"
    assert r.tick(last_true + 21 * MIN) == []
    # the first burst raised today's dispersion: the next one pages once confirmed
    later = r.model.index(last_true + 40 * MIN)
    assert [m.kind for m in feed(r, [0] * (later - nxt - 1) + [12, 12], nxt + 1)] == ["firing"]


# -- evidence and crisis words -----------------------------------------------------------------
def test_evidence_is_the_lowest_scored_negatives_of_the_current_window():
    r = rule(window="10m")
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


def test_crisis_words_in_the_window_raise_severity_one_level_and_can_be_switched_off():
    burst = negatives(11, S + 72 * B + MIN) + [with_crisis_words(make_mention(published_at=S + 72 * B + MIN), "中毒")]
    r = rule()
    calm(r, per_bucket=0)
    [m] = r.add_data(burst, S + 72 * B + 2 * MIN)
    assert m.severity == Severity.III  # IV by magnitude, one up for 中毒
    assert m.reason.endswith("，含危机词「中毒」") and m.numbers["crisis_words"] == "中毒"

    off = rule(crisis_raise=False)
    calm(off, per_bucket=0)
    assert [m.severity for m in off.add_data(burst, S + 72 * B + 2 * MIN)] == [Severity.IV]


def test_crisis_raise_is_capped_at_I():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + MIN
    burst = negatives(199, now) + [with_crisis_words(make_mention(published_at=now), "爆炸")]
    assert [m.severity for m in r.add_data(burst, now)] == [Severity.I]


# -- counting ----------------------------------------------------------------------------------
def test_late_and_out_of_order_mentions_count_in_their_own_buckets():
    r = rule(confirm=2, z_immediate=None)
    nxt = calm(r, per_bucket=0)
    a, b = S + nxt * B, S + (nxt + 1) * B
    batch = negatives(12, a + MIN) + negatives(12, b + MIN)
    random.Random(7).shuffle(batch)
    late = r.add_data(batch, b + 2 * MIN)  # both buckets arrive at once, after the first ended
    assert [m.kind for m in late] == ["firing"]
    assert (r.model.count(nxt), r.model.count(nxt + 1)) == (12, 12)


def test_mentions_published_after_now_wait_for_their_time():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + MIN
    ahead = now + timedelta(hours=2)  # e.g. a source with a wrong time zone
    assert r.add_data(negatives(12, ahead), now) == []
    assert r.measure(now).current_negative == 0
    assert [m.kind for m in r.tick(ahead + MIN)] == ["firing"]


def test_positive_neutral_and_unscored_count_in_the_total_only():
    r = rule()
    nxt = calm(r, per_bucket=0)
    now = S + nxt * B + 3 * MIN
    data = (negatives(4, now - MIN)
            + [make_mention(published_at=now - MIN, label="neutral", score=0.5) for _ in range(3)]
            + [make_mention(published_at=now - MIN, label="positive", score=0.9) for _ in range(2)]
            + [make_mention(published_at=now - MIN, label=None, score=None)])
    assert r.add_data(data, now) == []
    n = r.measure(now)
    assert (n.current_negative, n.current_total, n.negative_share) == (4, 10, 0.4)


def test_recorded_counts_drive_the_same_rule():
    r = rule()
    for k in range(72):
        assert r.add_counts(S + k * B + HALF, 2, now=S + (k + 1) * B) == []
    assert r.add_counts(S + 72 * B + HALF, 14, now=S + 73 * B) == []
    [m] = r.add_counts(S + 73 * B + HALF, 14, now=S + 74 * B, total=20)
    assert (m.kind, m.numbers["current_negative"], m.numbers["current_total"], m.evidence) == ("firing", 14, 20, ())


def test_a_restarted_rule_fed_the_stored_history_reaches_the_same_state():
    history = [m for k in range(72) for m in negatives(2, S + k * B + HALF)] + negatives(40, S + 72 * B + MIN)
    now = S + 72 * B + 3 * MIN
    first = rule()
    [m1] = first.add_data(history, now)
    later = NegativeSpikeRule(config(), TOPIC, now + MIN)  # another start time: other bucket edges
    [m2] = later.add_data(history, now + MIN)
    assert (m1.kind, m1.severity) == (m2.kind, m2.severity) == ("firing", Severity.III)


def test_history_needed_covers_the_seasonal_days_the_dispersion_day_and_the_reference():
    assert rule().history_needed() >= timedelta(days=4, hours=6)
    assert rule().history_needed() < timedelta(days=4, hours=7)
    assert rule(seasonal_days=7).history_needed() >= timedelta(days=8, hours=6)
    assert rule(seasonal_days=0, reference="1h").history_needed() >= timedelta(days=1, hours=1)
    assert rule(seasonal_days=0, reference="1h").history_needed() < timedelta(days=1, hours=2)


# -- configuration -----------------------------------------------------------------------------
def test_defaults_are_the_tuned_ones():
    c = config()
    assert (c.bucket, c.current_window, c.reference, c.seasonal_days, c.seasonal_weight) == (
        B, B, timedelta(hours=6), 3, 0.5)
    assert (c.z_threshold, c.confirm, c.z_immediate, c.spike_ratio, c.min_current, c.min_baseline) == (
        6.0, 2, 20.0, 3.0, 10, 0.05)
    r = rule()
    assert (r.warmup, r.resolve_after) == (timedelta(hours=6), timedelta(minutes=30))


@pytest.mark.parametrize(("overrides", "problem"), [
    (dict(bucket="10m", window="5m"), "window: must be at least the bucket (10m), got 5m"),
    (dict(window="1h", reference="30m"), "reference: must be at least the window (1h), got 30m"),
    (dict(bucket="7m"), "bucket: must divide one day evenly when seasonal_days > 0, got 7m"),
    (dict(z_threshold=8, z_immediate=8), "z_immediate: must be above z_threshold (8), got 8"),
])
def test_config_problems_name_the_field(overrides, problem):
    assert config(**overrides).problems() == [problem]


def test_config_without_problems():
    assert config().problems() == []
    assert config(bucket="7m", seasonal_days=0).problems() == []
    assert config(window="10m", reference="10m").problems() == []


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
