"""influencer: pure state machine, times passed in (no clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules.influencer import InfluencerConfig, InfluencerRule
from monitor.core.severity import Severity
from tests.factories import T0, TOPIC, make_mention, with_crisis_words

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


def rule(**overrides) -> InfluencerRule:
    cfg = InfluencerConfig(**{"name": "大V负面", "type": "influencer", "min_followers": 100_000, **overrides})
    return InfluencerRule(cfg, TOPIC, T0)


def voice(followers, **overrides):
    return make_mention(published_at=overrides.pop("published_at", T0), author_followers=followers,
                        author=overrides.pop("author", "消费维权观察"), **overrides)


def test_a_negative_mention_by_a_big_account_pages_with_it_as_evidence():
    r = rule()
    big = voice(120_000, text="鲜丰奶茶食品安全问题严重，大家注意")
    [m] = r.add_data([voice(99_999), voice(None), voice(500_000, label="neutral", score=0.5), big], T0 + 10 * SEC)
    assert (m.kind, m.rule_type, m.severity, m.evidence) == ("firing", "influencer", Severity.IV, (big,))
    assert m.reason == "「品牌A」大V发布负面内容：消费维权观察（粉丝 12万）：鲜丰奶茶食品安全问题严重，大家注意"
    assert m.numbers == {"followers": 120_000, "min_followers": 100_000, "count": 1, "window": "1h"}


def test_mentions_without_follower_counts_are_skipped():
    assert rule().add_data([make_mention(published_at=T0)], T0) == []


@pytest.mark.parametrize(("followers", "severity"), [(100_000, Severity.IV), (499_999, Severity.IV),
                                                     (500_000, Severity.III), (2_000_000, Severity.II),
                                                     (10_000_000, Severity.I)])
def test_severity_grows_with_reach(followers, severity):
    assert [m.severity for m in rule().add_data([voice(followers)], T0)] == [severity]


def test_crisis_words_raise_one_level_capped_at_I():
    m1 = with_crisis_words(voice(500_000), "中毒")
    [m] = rule().add_data([m1], T0)
    assert m.severity == Severity.II and m.numbers["crisis_words"] == "中毒" and "含危机词「中毒」" in m.reason
    top = with_crisis_words(voice(50_000_000), "爆炸")
    assert [m.severity for m in rule().add_data([top], T0)] == [Severity.I]
    assert [m.severity for m in rule(crisis_raise=False).add_data([m1], T0)] == [Severity.III]


def test_batch_ranks_by_severity_then_reach_and_recovers_after_quiet():
    r = rule(resolve_after="30m")
    small, large = voice(150_000, author="甲"), voice(900_000, author="乙")
    [m] = r.add_data([small, large], T0)
    assert (m.severity, m.evidence, m.numbers["count"]) == (Severity.III, (large, small), 2)
    assert m.reason.startswith("「品牌A」大V发布负面内容：乙（粉丝 90万）") and m.reason.endswith("（本批共 2 条）")
    [again] = r.add_data([voice(200_000, published_at=T0 + MIN)], T0 + MIN)
    assert (again.kind, again.severity) == ("firing", Severity.IV)  # evidence; the incident stays at III
    assert r.tick(T0 + 31 * MIN - timedelta(seconds=1)) == []
    [rec] = r.tick(T0 + 31 * MIN)
    assert (rec.kind, rec.severity) == ("recovered", Severity.III)
    assert rec.reason == "「品牌A」大V负面告警已平息：30m内未再出现粉丝 10万 以上作者的负面内容"


def test_labels_can_include_neutral_and_old_mentions_are_ignored():
    r = rule(labels=("negative", "neutral"))
    assert len(r.add_data([voice(300_000, label="neutral", score=0.5)], T0)) == 1
    assert rule().add_data([voice(300_000, published_at=T0 - 2 * timedelta(hours=1))], T0) == []
