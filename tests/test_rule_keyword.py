"""keyword: pure state machine, times passed in (no clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.rules.keyword import KeywordConfig, KeywordRule
from monitor.core.severity import Severity
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError
from tests.factories import T0, TOPIC, make_mention, with_crisis_words

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


def rule(**overrides) -> KeywordRule:
    cfg = KeywordConfig(**{"name": "危机词", "type": "keyword", "terms": {"爆炸": "I", "中毒": "II", "维权": "IV"},
                           **overrides})
    return KeywordRule(cfg, TOPIC, T0)


def test_a_term_pages_at_once_with_its_severity_and_the_mention_as_evidence():
    r = rule()
    hit = make_mention(published_at=T0, text="鲜丰奶茶喝出中毒症状，已就医", author="小李")
    [m] = r.add_data([make_mention(published_at=T0, text="鲜丰奶茶不好喝"), hit], T0 + 10 * SEC)
    assert (m.kind, m.rule_type, m.severity, m.evidence) == ("firing", "keyword", Severity.II, (hit,))
    assert m.reason == "「品牌A」出现敏感词「中毒」：小李：鲜丰奶茶喝出中毒症状，已就医"
    assert m.numbers == {"keyword": "中毒", "count": 1, "window": "1h"}


def test_matching_is_case_insensitive_and_looks_at_the_title():
    r = rule(terms=("Recall",), severity="II")
    [m] = r.add_data([make_mention(published_at=T0, text="正文无关", title="Product RECALL notice")], T0)
    assert (m.severity, m.numbers["keyword"]) == (Severity.II, "recall")


def test_several_hits_take_the_highest_severity_and_list_the_worst_first():
    r = rule()
    a = make_mention(published_at=T0, text="要维权")
    b = make_mention(published_at=T0 + SEC, text="仓库爆炸了，有人中毒")
    [m] = r.add_data([a, b], T0 + MIN)
    assert m.severity == Severity.I
    assert m.evidence == (b, a)
    assert m.numbers["keyword"] == "爆炸、中毒、维权"
    assert m.reason.endswith("（本批共 2 条）")


def test_later_hits_add_evidence_then_escalate_then_recover():
    r = rule(resolve_after="30m")
    [first] = r.add_data([make_mention(published_at=T0, text="维权群已经200人")], T0)
    assert first.severity == Severity.IV
    [same] = r.add_data([make_mention(published_at=T0 + MIN, text="继续维权")], T0 + MIN)
    assert (same.kind, same.severity) == ("firing", Severity.IV)  # evidence for the open incident, no new page
    [worse] = r.add_data([make_mention(published_at=T0 + 2 * MIN, text="听说有人中毒")], T0 + 2 * MIN)
    assert worse.severity == Severity.II
    assert r.tick(T0 + 32 * MIN - timedelta(seconds=1)) == []
    [rec] = r.tick(T0 + 32 * MIN)
    assert (rec.kind, rec.severity, rec.evidence) == ("recovered", Severity.II, ())
    assert rec.reason == "「品牌A」敏感词告警已平息：30m内未再出现命中内容"
    assert r.tick(T0 + 40 * MIN) == []


def test_nlp_crisis_words_page_with_crisis_severity_unless_a_term_says_otherwise():
    r = rule(crisis_severity="III")
    plain = with_crisis_words(make_mention(published_at=T0, text="出事了"), "泄露")
    [m] = r.add_data([plain], T0)
    assert (m.severity, m.numbers["keyword"]) == (Severity.III, "泄露")
    mapped = with_crisis_words(make_mention(published_at=T0, text="出事了"), "爆炸")
    assert [m.severity for m in rule().add_data([mapped], T0)] == [Severity.I]
    off = rule(crisis_words=False)
    assert off.add_data([plain], T0) == []


def test_labels_restrict_hits():
    r = rule(labels=("negative",))
    assert r.add_data([make_mention(published_at=T0, text="好喝到爆炸", label="positive", score=0.9)], T0) == []
    assert len(r.add_data([make_mention(published_at=T0, text="爆炸")], T0)) == 1


def test_future_hits_wait_and_old_hits_are_ignored():
    r = rule(resolve_after="1h")
    assert r.add_data([make_mention(published_at=T0 + 10 * MIN, text="爆炸")], T0) == []
    assert [m.kind for m in r.tick(T0 + 10 * MIN)] == ["firing"]
    stale = rule(resolve_after="1h")
    assert stale.add_data([make_mention(published_at=T0 - 61 * MIN, text="爆炸")], T0) == []  # replayed history
    assert stale.history_needed() == timedelta(hours=1)


def test_terms_as_a_list_use_severity():
    cfg = KeywordConfig(name="k", type="keyword", terms=[" 召回 ", ""], severity="II")
    assert cfg.term_levels == {"召回": Severity.II}


def test_config_needs_a_term_or_crisis_words():
    assert KeywordConfig(name="k", type="keyword", crisis_words=False).problems() == [
        "terms: give at least one term, or set crisis_words: true"]
    assert KeywordConfig(name="k", type="keyword").problems() == []
    text = """
topics: [{name: 品牌A, keywords: [品牌A]}]
rules:
  - {name: 危机词, type: keyword, crisis_words: false}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert info.value.problems == ["config.yaml: rules[0].terms: give at least one term, or set crisis_words: true"]


def test_config_rejects_an_unknown_severity():
    with pytest.raises(ConfigError) as info:
        parse_config("rules:\n  - {name: k, type: keyword, terms: {爆炸: V}}\n", env={})
    assert "rules[0].terms" in info.value.problems[0]


def test_complaint_vocabulary_alone_does_not_page_unless_listed_as_a_term():
    plain = KeywordRule(KeywordConfig(name="危机词", type="keyword"), TOPIC, T0)
    assert plain.add_data([with_crisis_words(make_mention(published_at=T0), "投诉")], T0) == []
    listed = KeywordRule(KeywordConfig(name="危机词", type="keyword", terms={"投诉": "IV"}), TOPIC, T0)
    [m] = listed.add_data([with_crisis_words(make_mention(published_at=T0, text="我要投诉"), "投诉")], T0)
    assert m.severity == Severity.IV
