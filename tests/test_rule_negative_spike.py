"""negative_spike rule and RuleEngine routing: pure state machines, times passed in."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from alerts.engine import RuleEngine
from alerts.rules.negative_spike import NegativeSpikeConfig, NegativeSpikeRule
from alerts.severity import Severity
from monitor.config import parse_config
from monitor.errors import ConfigError
from tests.factories import T0, TOPIC, make_mention, negatives

MIN = timedelta(minutes=1)
S = T0  # rule start
W = S + timedelta(hours=1)  # first instant the default rule is warm (warmup = reference = 1h)


def config(**overrides) -> NegativeSpikeConfig:
    values = dict(name="负面激增", type="negative_spike", window="10m", reference="1h", min_current=5)
    values.update(overrides)
    return NegativeSpikeConfig(**values)


def rule(**overrides) -> NegativeSpikeRule:
    return NegativeSpikeRule(config(**overrides), TOPIC, S)


# -- warm-up -----------------------------------------------------------------------


def test_no_page_during_warmup_even_with_a_burst_then_pages_once_warm():
    r = rule()
    burst = negatives(30, S + 55 * MIN)
    assert r.add_data(burst, S + 56 * MIN) == []
    assert r.is_warm(S + 56 * MIN) is False
    assert r.measure(S + 56 * MIN)["current_negative"] == 30
    assert r.tick(S + 59 * MIN + timedelta(seconds=59)) == []

    matches = r.tick(W)  # exactly `warmup` after start, burst still in the window
    assert r.is_warm(W) is True
    assert [(m.kind, m.severity) for m in matches] == [("firing", Severity.II)]  # 30 >= 5x5, ratio 90 >= 4x3


# -- firing, staying quiet, escalating ---------------------------------------------------


def test_pages_once_at_threshold():
    r = rule()
    assert r.add_data(negatives(4, W + 1 * MIN), W + 2 * MIN) == []  # 4 < min_current

    matches = r.add_data(negatives(1, W + 3 * MIN), W + 4 * MIN)

    assert len(matches) == 1
    m = matches[0]
    assert (m.kind, m.rule, m.rule_type, m.topic, m.at, m.severity) == (
        "firing", "负面激增", "negative_spike", TOPIC, W + 4 * MIN, Severity.IV)
    assert m.group_key == f"{TOPIC}|负面激增"
    assert m.numbers["current_negative"] == 5
    assert m.numbers["ratio"] == 15.0  # 5 / (2 * 10m/1h)
    assert m.reason == "「品牌A」负面声量激增：近10m负面 5 条（占 100%），基准约 0.33 条，为基准的 15 倍"


def test_ratio_below_spike_ratio_does_not_page():
    r = rule(min_reference=12)  # expected = 12 * 10/60 = 2.0 per window
    assert r.add_data(negatives(5, W + MIN), W + 2 * MIN) == []  # ratio 2.5 < 3
    assert r.measure(W + 2 * MIN)["ratio"] == 2.5
    assert [m.kind for m in r.add_data(negatives(1, W + 2 * MIN), W + 3 * MIN)] == ["firing"]  # ratio 3.0


def test_no_second_firing_while_burst_continues_at_same_severity():
    r = rule()
    assert len(r.add_data(negatives(5, W + 1 * MIN), W + 1 * MIN)) == 1
    assert r.add_data(negatives(2, W + 2 * MIN), W + 2 * MIN) == []  # 7 negatives: still IV
    assert r.add_data(negatives(2, W + 3 * MIN), W + 3 * MIN) == []  # 9 negatives: still IV
    assert r.tick(W + 5 * MIN) == []
    assert r.measure(W + 5 * MIN)["current_negative"] == 9


def test_escalation_emits_a_firing_per_higher_severity_and_never_for_lower():
    r = rule()  # min_current 5, spike_ratio 3; expected 1/3 per window on a silent topic
    seen = []
    # IV at 5; III at >=10 and ratio>=6; II at >=25 and ratio>=12; I at >=100 and ratio>=24
    for count, minute in ((5, 1), (4, 2), (1, 3), (15, 4), (75, 5)):
        seen.append([(m.kind, m.severity) for m in r.add_data(negatives(count, W + minute * MIN), W + minute * MIN)])
    assert seen == [
        [("firing", Severity.IV)],
        [],  # 9: still IV
        [("firing", Severity.III)],  # 10
        [("firing", Severity.II)],  # 25
        [("firing", Severity.I)],  # 100
    ]
    # the burst fades to a lower severity (II: 75 left in the window): no match, the rule stays at I
    later = W + 14 * MIN + timedelta(seconds=30)
    assert r.tick(later) == []
    assert r.measure(later)["current_negative"] == 75


def test_recovers_once_after_resolve_after_of_quiet():
    r = rule()
    assert len(r.add_data(negatives(5, W + 1 * MIN), W + 1 * MIN)) == 1
    assert r.tick(W + 10 * MIN) == []  # still true: last true at W+10m
    assert r.tick(W + 11 * MIN) == []  # burst left the window: false for 1m
    assert r.tick(W + 19 * MIN + timedelta(seconds=59)) == []  # 9m59s < resolve_after (10m)

    matches = r.tick(W + 20 * MIN)

    assert len(matches) == 1
    m = matches[0]
    assert (m.kind, m.severity, m.at, m.evidence) == ("recovered", Severity.IV, W + 20 * MIN, ())
    assert m.reason == "「品牌A」负面声量已回落：近10m负面 0 条，持续 10m 低于告警线"
    assert r.tick(W + 21 * MIN) == []
    assert r.tick(W + 60 * MIN) == []


def test_recovery_uses_configured_resolve_after_and_keeps_highest_severity():
    r = rule(resolve_after="30m")
    assert [m.severity for m in r.add_data(negatives(10, W + MIN), W + MIN)] == [Severity.III]
    assert r.tick(W + 11 * MIN) == []  # false from here on; last true at W+1m
    assert r.tick(W + 30 * MIN + timedelta(seconds=59)) == []  # 29m59s < 30m
    assert [(m.kind, m.severity) for m in r.tick(W + 31 * MIN)] == [("recovered", Severity.III)]


def test_new_burst_after_recovery_pages_again():
    r = rule()
    r.add_data(negatives(5, W + MIN), W + MIN)
    assert [m.kind for m in r.tick(W + 11 * MIN)] == ["recovered"]
    assert [m.kind for m in r.add_data(negatives(5, W + 30 * MIN), W + 30 * MIN)] == ["firing"]


# -- baselines -------------------------------------------------------------------------------


def test_steady_noisy_baseline_does_not_page_but_a_spike_on_top_does():
    r = rule()
    for minute in range(0, 81):  # 2 negatives every minute from the start
        now = S + minute * MIN
        assert r.add_data(negatives(2, now), now) == [], minute
    now = S + 80 * MIN
    n = r.measure(now)
    # current (70m, 80m]: minutes 71..80; reference (10m, 70m]: minutes 11..70
    assert (n["current_negative"], n["reference_negative"], n["expected"], n["ratio"]) == (20, 120, 20.0, 1.0)

    spike = r.add_data(negatives(40, now), now)  # 60 in the window = 3x the baseline
    assert [(m.kind, m.severity) for m in spike] == [("firing", Severity.IV)]
    assert spike[0].numbers["ratio"] == 3.0


def test_min_reference_floor_prevents_paging_on_two_complaints_on_a_silent_topic():
    # floor 12 per hour = 2 per 10-minute window: 2 complaints are exactly the expected volume
    r = rule(min_current=2, min_reference=12)
    assert r.add_data(negatives(2, W + MIN), W + 2 * MIN) == []
    n = r.measure(W + 2 * MIN)
    assert (n["current_negative"], n["reference_negative"], n["expected"], n["ratio"]) == (2, 0, 2.0, 1.0)

    # the same two complaints with a tiny floor would page: the floor is what stops it
    low = rule(min_current=2, min_reference=0.5)
    assert [m.kind for m in low.add_data(negatives(2, W + MIN), W + 2 * MIN)] == ["firing"]


# -- counting ------------------------------------------------------------------------------


def test_out_of_order_mention_times_are_counted_correctly():
    r = rule()
    now = W + 30 * MIN
    minutes_ago = [1, 40, 5, 65, 80, 2, 10, 0]  # 80: beyond window+reference; 10: boundary -> reference
    batch1 = [make_mention(published_at=now - m * MIN) for m in minutes_ago]
    batch2 = [make_mention(published_at=now - m * MIN) for m in (3, 50, 9, 69)]
    random.Random(7).shuffle(batch1)
    r.add_data(batch1, now)
    r.add_data(batch2, now)

    n = r.measure(now)
    assert n["current_negative"] == 6  # 0, 1, 2, 3, 5, 9
    assert n["reference_negative"] == 5  # 10, 40, 50, 65, 69
    assert n["current_total"] == 6

    # five minutes later: the window is (now-5m, now+5m]; 5 minutes ago is now on the reference side
    later = now + 5 * MIN
    r.tick(later)
    n = r.measure(later)
    assert n["current_negative"] == 4  # 0, 1, 2, 3
    assert n["reference_negative"] == 5  # 5, 9, 10, 40, 50  (65 and 69 left the reference window)


def test_positive_and_neutral_are_not_negatives_but_count_in_current_total():
    r = rule()
    now = W + 5 * MIN
    current = (
        negatives(4, now - MIN)
        + [make_mention(published_at=now - MIN, label="neutral", score=0.5) for _ in range(3)]
        + [make_mention(published_at=now - MIN, label="positive", score=0.9) for _ in range(2)]
        + [make_mention(published_at=now - MIN, label=None, score=None)]  # not scored
    )
    reference = [make_mention(published_at=now - 30 * MIN, label="positive", score=0.95) for _ in range(20)]
    assert r.add_data(current + reference, now) == []  # 4 negatives < min_current 5

    n = r.measure(now)
    assert (n["current_negative"], n["current_total"], n["negative_share"], n["reference_negative"]) == (4, 10, 0.4, 0)


def test_evidence_is_the_lowest_scored_negatives_of_the_current_window():
    r = rule()
    now = W + 10 * MIN
    scores = [0.3, 0.05, 0.2, 0.01, 0.35, 0.15, 0.25]
    current = [make_mention(published_at=now - (i + 1) * MIN, score=s) for i, s in enumerate(scores)]
    older = make_mention(published_at=now - 20 * MIN, score=0.0)  # negative, but in the reference window
    neutral = make_mention(published_at=now - MIN, label="neutral", score=0.0)

    matches = r.add_data([*current, older, neutral], now)

    assert [m.kind for m in matches] == ["firing"]
    assert [m.score for m in matches[0].evidence] == [0.01, 0.05, 0.15, 0.2, 0.25]
    assert all(m.label == "negative" for m in matches[0].evidence)


def test_measure_is_exact_for_a_hand_computed_case():
    r = rule(window="10m", reference="30m", min_reference=2)
    now = W + 30 * MIN
    data = (
        negatives(9, now - 3 * MIN)
        + [make_mention(published_at=now - 4 * MIN, label="neutral", score=0.5) for _ in range(3)]
        + negatives(4, now - 25 * MIN)  # reference (now-40m, now-10m]
        + negatives(2, now - 41 * MIN)  # older than window+reference: not counted
    )
    r.add_data(data, now)
    # expected = max(4, 2) * 10/30 = 1.333..; ratio = 9 / 1.333.. = 6.75
    assert r.measure(now) == {
        "current_negative": 9,
        "current_total": 12,
        "negative_share": 0.75,
        "reference_negative": 4,
        "expected": 1.33,
        "ratio": 6.75,
        "window": "10m",
        "reference": "30m",
    }


def test_measure_uses_min_reference_when_the_reference_is_below_it():
    r = rule(window="10m", reference="30m", min_reference=2)
    now = W + 30 * MIN
    r.add_data(negatives(9, now - 3 * MIN) + negatives(1, now - 15 * MIN), now)
    n = r.measure(now)
    # expected = max(1, 2) * 10/30 = 0.666..; ratio = 9 / 0.666.. = 13.5
    assert (n["reference_negative"], n["expected"], n["ratio"]) == (1, 0.67, 13.5)


def test_threshold_is_compared_with_the_exact_ratio_not_the_rounded_one():
    r = rule(min_current=10, spike_ratio=1.4)
    now = W + 30 * MIN
    # reference 43 -> expected 43/6 = 7.1667; current 10 -> ratio 1.3953 < 1.4
    matches = r.add_data(negatives(43, now - 30 * MIN) + negatives(10, now - MIN), now)
    assert matches == []


def test_mentions_published_after_now_wait_for_their_time():
    # documented current window is (now - window, now]; e.g. a source with a wrong time zone
    r = rule()
    now = W + 5 * MIN
    ahead = now + timedelta(hours=2)
    matches = r.add_data(negatives(6, ahead), now)
    n = r.measure(now)
    assert (n["current_negative"], n["current_total"]) == (0, 0)
    assert matches == []

    later = r.tick(ahead + MIN)
    assert r.measure(ahead + MIN)["current_negative"] == 6
    assert [m.kind for m in later] == ["firing"]


# -- configuration ---------------------------------------------------------------------------


def test_config_problem_reference_shorter_than_window():
    assert config(window="1h", reference="30m").problems() == [
        "reference: must be at least the window (1h), got 30m"]
    assert config(window="10m", reference="10m").problems() == []
    assert config().problems() == []


def test_config_loader_reports_reference_shorter_than_window():
    text = """
topics:
  - name: 品牌A
    keywords: [品牌A]
rules:
  - name: 负面激增
    type: negative_spike
    window: 1h
    reference: 30m
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert info.value.problems == ["config.yaml: rules[0].reference: must be at least the window (1h), got 30m"]


def test_config_defaults_for_warmup_and_resolve_after():
    r = rule(window="15m", reference="2h")
    assert (r.warmup, r.resolve_after) == (timedelta(hours=2), timedelta(minutes=15))
    assert r.history_needed() == timedelta(hours=2, minutes=15)
    r2 = rule(warmup="0s", resolve_after="1h")
    assert (r2.warmup, r2.resolve_after) == (timedelta(0), timedelta(hours=1))


# -- engine -------------------------------------------------------------------------------------


def test_engine_routes_mentions_by_topic():
    engine = RuleEngine([config()], ["A", "B"], S)
    by_topic = {r.topic: r for r in engine.rules}
    assert sorted(by_topic) == ["A", "B"]

    burst = negatives(6, W + MIN, topics=("A",))
    matches = engine.add_data(burst, W + 2 * MIN)

    assert [(m.topic, m.kind) for m in matches] == [("A", "firing")]
    assert by_topic["A"].measure(W + 2 * MIN)["current_negative"] == 6
    assert by_topic["B"].measure(W + 2 * MIN)["current_negative"] == 0
    assert [(m.topic, m.kind) for m in engine.tick(W + 30 * MIN)] == [("A", "recovered")]


def test_engine_mention_in_two_topics_reaches_both_and_rule_topics_restrict_instances():
    only_b = config(name="B专用", topics=("B",))
    engine = RuleEngine([config(), only_b], ["A", "B"], S)
    assert sorted((r.config.name, r.topic) for r in engine.rules) == [("B专用", "B"), ("负面激增", "A"), ("负面激增", "B")]
    assert engine.history_needed() == timedelta(hours=1, minutes=10)

    matches = engine.add_data(negatives(5, W + MIN, topics=("A", "B")) + negatives(5, W + MIN, topics=("C",)),
                              W + MIN)

    assert sorted((m.rule, m.topic) for m in matches) == [("B专用", "B"), ("负面激增", "A"), ("负面激增", "B")]
