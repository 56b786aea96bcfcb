"""frequency: pure state machine, times passed in (no clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from alerts.rules.frequency import FrequencyConfig, FrequencyRule
from monitor.core.severity import Severity
from tests.factories import T0, TOPIC, make_mention, negatives, with_crisis_words

MIN = timedelta(minutes=1)


def rule(**overrides) -> FrequencyRule:
    cfg = FrequencyConfig(**{"name": "投诉频发", "type": "frequency", "count": 5, **overrides})
    return FrequencyRule(cfg, TOPIC, T0)


def test_fires_at_count_within_window_with_reason_numbers_and_evidence():
    r = rule(window="10m", labels=("negative",))
    assert r.add_data(negatives(4, T0), T0 + MIN) == []
    [m] = r.add_data(negatives(1, T0 + 2 * MIN, score=0.01), T0 + 3 * MIN)
    assert (m.kind, m.rule_type, m.severity, m.at) == ("firing", "frequency", Severity.IV, T0 + 3 * MIN)
    assert m.numbers == {"count": 5, "threshold": 5, "window": "10m"}
    assert (m.measurement.count, m.measurement.window) == (5, 10 * MIN)  # typed: the window is a timedelta
    assert m.reason == "「品牌A」负面提及频繁：近10m 5 条，达到阈值 5 条的 1 倍"
    assert m.evidence[0].score == 0.01 and len(m.evidence) == 5


def test_mentions_spread_wider_than_the_window_do_not_fire():
    r = rule(window="10m")
    for k in range(10):
        assert r.add_data(negatives(1, T0 + 3 * k * MIN), T0 + 3 * k * MIN) == []  # at most 4 in any 10m


def test_filters_label_terms_and_max_score():
    r = rule(labels=("negative", "neutral"), terms=("退款",), max_score=0.3)
    good = dict(text="鲜丰奶茶要求退款")
    data = ([make_mention(published_at=T0, **good) for _ in range(4)]
            + [make_mention(published_at=T0, label="positive", score=0.2, **good)]  # label
            + [make_mention(published_at=T0, text="鲜丰奶茶难喝")]  # no term
            + [make_mention(published_at=T0, score=0.35, **good)]  # score too high
            + [make_mention(published_at=T0, score=None, **good)])  # unscored
    assert r.add_data(data, T0 + MIN) == []
    assert r.what() == "负面/中性含「退款」提及"
    assert [m.kind for m in r.add_data([make_mention(published_at=T0, label="neutral", score=0.3, **good)],
                                       T0 + MIN)] == ["firing"]


def test_no_filter_counts_every_mention():
    r = rule()
    data = [make_mention(published_at=T0, label=lab, score=0.5) for lab in ("positive", "neutral", None, "negative", "x")]
    assert [m.kind for m in r.add_data(data, T0 + MIN)] == ["firing"]


@pytest.mark.parametrize(("count", "severity"), [(9, Severity.IV), (10, Severity.III), (25, Severity.II),
                                                 (100, Severity.I)])
def test_severity_by_multiple_of_count(count, severity):
    assert [m.severity for m in rule().add_data(negatives(count, T0), T0)] == [severity]


def test_escalation_recovery_and_crisis_raise():
    r = rule(window="5m", resolve_after="10m")
    burst = negatives(4, T0) + [with_crisis_words(make_mention(published_at=T0), "爆炸")]
    [m] = r.add_data(burst, T0)
    assert m.severity == Severity.III and m.reason.endswith("含危机词「爆炸」")
    assert r.add_data(negatives(4, T0 + MIN), T0 + MIN) == []  # 9: III is no growth
    assert [m.severity for m in r.add_data(negatives(16, T0 + MIN), T0 + MIN)] == [Severity.II]  # 25 -> II; a crisis word never lifts to I
    assert r.tick(T0 + 5 * MIN) == []  # T0 entries left; 20 remain
    assert r.tick(T0 + 6 * MIN) == []  # all gone, false from here
    [rec] = r.tick(T0 + 16 * MIN)
    assert (rec.kind, rec.severity) == ("recovered", Severity.II)
    assert rec.reason == "「品牌A」提及已回落：近5m 0 条，持续 10m 低于阈值 5 条"


def test_count_is_required_and_positive():
    with pytest.raises(ValidationError):
        FrequencyConfig(name="x", type="frequency")
    with pytest.raises(ValidationError):
        FrequencyConfig(name="x", type="frequency", count=0)


def test_complaint_vocabulary_is_shown_but_does_not_raise_severity():
    r = rule(window="5m")
    burst = negatives(4, T0) + [with_crisis_words(make_mention(published_at=T0), "投诉", "退款")]
    [m] = r.add_data(burst, T0)
    assert m.severity == Severity.IV  # 5 = the count: IV, and 投诉/退款 alone do not lift it
    assert m.reason.endswith("含危机词「投诉、退款」")
