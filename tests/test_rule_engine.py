"""RuleEngine routing (topics, sources, platforms) and the helpers shared by rule types."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.engine import RuleEngine
from alerts.rules.common import Hysteresis, TimeIndex, level_for, most_negative, raise_severity, with_crisis
from alerts.rules.frequency import FrequencyConfig
from alerts.rules.registry import RULES
from monitor.core.severity import Severity
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError
from tests.factories import T0, make_mention, negatives, with_crisis_words

MIN = timedelta(minutes=1)


def freq(**overrides) -> FrequencyConfig:
    return FrequencyConfig(**{"name": "频发", "type": "frequency", "count": 3, **overrides})


def test_every_rule_type_is_registered():
    assert {"negative_spike", "negative_share", "keyword", "frequency", "influencer"} <= set(RULES.names())


def test_engine_routes_mentions_by_topic_and_rule_topics_restrict_instances():
    engine = RuleEngine([freq(), freq(name="B专用", topics=("B",))], ["A", "B"], T0)
    assert sorted((r.config.name, r.topic) for r in engine.rules) == [("B专用", "B"), ("频发", "A"), ("频发", "B")]
    matches = engine.add_data(negatives(3, T0, topics=("A", "B")) + negatives(3, T0, topics=("C",)), T0)
    assert sorted((m.rule, m.topic) for m in matches) == [("B专用", "B"), ("频发", "A"), ("频发", "B")]


def test_engine_restricts_a_rule_to_its_sources_and_platforms():
    engine = RuleEngine([freq(name="微博", sources=("weibo-search",)), freq(name="B站", platforms=("bilibili",))],
                        ["品牌A"], T0)
    weibo = negatives(3, T0, source="weibo-search", platform="weibo", topics=("品牌A",))
    bili = negatives(3, T0, source="rsshub", platform="bilibili", topics=("品牌A",))
    assert [m.rule for m in engine.add_data(weibo, T0)] == ["微博"]
    assert [m.rule for m in engine.add_data(bili, T0)] == ["B站"]


def test_config_rejects_a_rule_source_that_does_not_exist():
    text = """
sources: [{name: feed, type: rss, url: "http://127.0.0.1/feed"}]
topics: [{name: 品牌A, keywords: [品牌A]}]
rules: [{name: 频发, type: frequency, count: 3, sources: [fed]}]
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert info.value.problems == ["config.yaml: rules[0].sources[0]: unknown source 'fed'; known: feed"]


def test_severity_helpers():
    assert [raise_severity(s) for s in (Severity.IV, Severity.III, Severity.II, Severity.I)] == [
        Severity.III, Severity.II, Severity.I, Severity.I]
    assert raise_severity(Severity.IV, 5) == Severity.I
    assert [level_for(v, (2, 5, 20)) for v in (1, 1.99, 2, 5, 19.9, 20, 1000)] == [
        Severity.IV, Severity.IV, Severity.III, Severity.II, Severity.II, Severity.I, Severity.I]
    plain, hit = make_mention(), with_crisis_words(make_mention(), "中毒", "爆炸")
    assert with_crisis(Severity.IV, [plain]) == (Severity.IV, [])
    assert with_crisis(Severity.IV, [plain, hit, hit]) == (Severity.III, ["中毒", "爆炸"])
    assert with_crisis(Severity.IV, [hit], enabled=False) == (Severity.IV, [])


def test_most_negative_ranks_by_score_with_unscored_last():
    ms = [make_mention(score=s) for s in (0.3, None, 0.1, 0.2)]
    assert [m.score for m in most_negative(ms, 3)] == [0.1, 0.2, 0.3]


def test_hysteresis_fires_on_growth_and_recovers_after_quiet():
    h = Hysteresis(timedelta(minutes=10))
    assert h.update(T0, Severity.IV) == ("firing", Severity.IV)
    assert h.update(T0 + MIN, Severity.IV) is None
    assert h.update(T0 + 2 * MIN, Severity.II) == ("firing", Severity.II)
    assert h.update(T0 + 3 * MIN, Severity.III) is None
    assert h.update(T0 + 12 * MIN, None) is None
    assert h.update(T0 + 13 * MIN, None) == ("recovered", Severity.II)
    assert h.update(T0 + 30 * MIN, None) is None and not h.firing


def test_time_index_window_is_left_open_and_future_items_wait():
    idx: TimeIndex[str] = TimeIndex()
    for minute, item in ((5, "c"), (1, "a"), (3, "b"), (20, "future")):
        idx.add(T0 + minute * MIN, item)
    assert idx.release(T0 + 10 * MIN) == [(T0 + MIN, "a"), (T0 + 3 * MIN, "b"), (T0 + 5 * MIN, "c")]
    assert idx.window(T0 + MIN, T0 + 5 * MIN) == ["b", "c"]
    assert idx.count(T0, T0 + 10 * MIN) == 3
    idx.prune(T0 + 3 * MIN)
    assert idx.window(T0, T0 + 30 * MIN) == ["c"]
    assert idx.release(T0 + 20 * MIN) == [(T0 + 20 * MIN, "future")]
