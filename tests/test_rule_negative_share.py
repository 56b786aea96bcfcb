"""negative_share: pure state machine, times passed in (no clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules.negative_share import NegativeShareConfig, NegativeShareRule
from monitor.core.severity import Severity
from tests.factories import T0, TOPIC, make_mention, negatives, with_crisis_words

MIN = timedelta(minutes=1)


def rule(**overrides) -> NegativeShareRule:
    cfg = NegativeShareConfig(**{"name": "负面占比", "type": "negative_share", "min_total": 10, **overrides})
    return NegativeShareRule(cfg, TOPIC, T0)


def mix(negative: int, other: int, at, **overrides):
    return negatives(negative, at, **overrides) + [
        make_mention(published_at=at, label="positive", score=0.9) for _ in range(other)]


def test_fires_at_the_share_with_minimum_volume_exact_numbers_and_reason():
    r = rule()
    assert r.add_data(mix(4, 5, T0), T0 + MIN) == []  # 9 mentions < min_total 10, share 44%
    matches = r.add_data(mix(1, 0, T0 + MIN), T0 + 2 * MIN)  # 10 mentions, 5 negative: exactly 50%

    [m] = matches
    assert (m.kind, m.rule, m.rule_type, m.topic, m.at, m.severity) == (
        "firing", "负面占比", "negative_share", TOPIC, T0 + 2 * MIN, Severity.IV)
    assert m.numbers == {"current_negative": 5, "current_total": 10, "negative_share": 0.5, "min_share": 0.5,
                         "min_total": 10, "window": "30m"}
    assert m.reason == "「品牌A」负面占比过高：近30m共 10 条，负面 5 条，占 50%（阈值 50%，最少 10 条）"
    assert len(m.evidence) == 5 and all(e.is_negative for e in m.evidence)


def test_below_the_share_does_not_fire_however_large_the_volume():
    r = rule()
    assert r.add_data(mix(49, 51, T0), T0 + MIN) == []
    assert r.measure(T0 + MIN).negative_share == 0.49


def test_unscored_mentions_are_not_counted():
    r = rule()
    unscored = [make_mention(published_at=T0, label=None, score=None) for _ in range(20)]
    assert r.add_data(mix(6, 3, T0) + unscored, T0 + MIN) == []  # 9 scored < min_total
    assert r.measure(T0 + MIN).current_total == 9


@pytest.mark.parametrize(("negative", "other", "severity"), [
    (13, 7, Severity.III),  # 65% of 20 (2x min_total)
    (12, 8, Severity.IV),  # 60%: not min_share + 0.15
    (38, 12, Severity.II),  # 76% of 50 (5x)
    (170, 30, Severity.I),  # 85% of 200 (20x)
    (160, 40, Severity.II),  # 80% of 200: short of +0.35 for I
])
def test_severity_grows_with_share_and_volume(negative, other, severity):
    assert [m.severity for m in rule().add_data(mix(negative, other, T0), T0 + MIN)] == [severity]


def test_escalates_when_worse_and_recovers_after_resolve_after():
    r = rule(window="10m", resolve_after="15m")
    assert [m.severity for m in r.add_data(mix(6, 4, T0), T0 + MIN)] == [Severity.IV]
    assert [(m.kind, m.severity) for m in r.add_data(mix(20, 0, T0 + 2 * MIN), T0 + 2 * MIN)] == [
        ("firing", Severity.III)]  # 26/30 = 87% of 30 mentions
    assert r.tick(T0 + 11 * MIN) == []  # the T0 + 2m burst is still in (now - 10m, now]: last true
    assert r.tick(T0 + 12 * MIN) == []  # the window is empty: false from here
    assert r.tick(T0 + 25 * MIN + timedelta(seconds=59)) == []
    [m] = r.tick(T0 + 26 * MIN)
    assert (m.kind, m.severity, m.evidence) == ("recovered", Severity.III, ())
    assert m.reason == "「品牌A」负面占比已回落：近10m共 0 条，负面占 0%，持续 15m 低于告警线"


def test_crisis_words_raise_one_level():
    r = rule()
    data = mix(5, 5, T0)
    data[0] = with_crisis_words(data[0], "中毒", "维权")
    [m] = r.add_data(data, T0 + MIN)
    assert m.severity == Severity.III and m.numbers["crisis_words"] == "中毒、维权"
    assert "含危机词「中毒、维权」" in m.reason


def test_mentions_in_the_future_wait_and_old_ones_leave_the_window():
    r = rule(window="10m")
    assert r.add_data(mix(6, 4, T0 + 30 * MIN), T0) == []
    assert [m.kind for m in r.tick(T0 + 30 * MIN)] == ["firing"]
    assert r.measure(T0 + 41 * MIN).current_total == 0
