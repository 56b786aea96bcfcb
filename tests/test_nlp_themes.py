"""What people are angry about (nlp/themes.py): weighted log-odds themes of an incident's negatives
against the topic's baseline, on the demo crisis and on two complaints that overlap; and the
largest story (最大传播)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from monitor.app.config import parse_config
from nlp.sentiment import scorer_from_config
from nlp.themes import Theme, format_themes, largest_story, themes
from tests.factories import T0, make_mention

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    """The pipeline's default scorer: the demo's negatives are what the daemon would call negative."""
    return scorer_from_config(parse_config(f"data_dir: {tmp_path_factory.mktemp('data')}"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _demo_keywords() -> list[str]:
    config = yaml.safe_load((FIXTURES / "demo" / "config.yaml").read_text(encoding="utf-8"))
    return [k for topic in config["topics"] for k in topic["keywords"]]


def test_the_demo_crisis_is_named(scorer):
    rows = _rows(FIXTURES / "demo" / "scenario.jsonl")
    negatives = [r["text"] for r in rows if r["offset"] >= 0 and scorer.score(r["text"]) < 0.4]
    history = [r["text"] for r in rows if r["offset"] < 0]
    assert len(negatives) >= 80 and len(history) >= 50

    found = themes(negatives, history, exclude=_demo_keywords())
    terms = [t.term for t in found]
    assert {"拉肚子", "异物", "退款"} <= set(terms[:6]), found
    assert not any("鲜丰" in t or "奶茶" in t for t in terms)  # the brand is in every mention
    own_words = [re.sub(r"//@[^:：]+[:：]", "|", text) for text in negatives]  # not in reposters' names
    for t in found:  # counts are mentions containing the term
        assert t.count == sum(t.term in text for text in own_words)
        assert t.z >= 1.96
    assert [t.z for t in found] == sorted((t.z for t in found), reverse=True)
    line = format_themes(found, limit=3)
    assert line.startswith("主要诉求：") and line.count(" · ") == 2 and "退款 ×" in line


def _overlap():
    rows = _rows(FIXTURES / "themes" / "overlap.jsonl")
    incident = [r["text"] for r in rows if r["set"] == "incident"]
    baseline = [r["text"] for r in rows if r["set"] == "baseline"]
    return incident, baseline


def test_two_overlapping_complaints_both_appear():
    incident, baseline = _overlap()
    found = themes(incident, baseline, exclude=["禾丰米线", "禾丰"], limit=8)
    terms = [t.term for t in found]
    assert {"拉肚子", "食物中毒"} & set(terms[:4]) and {"涨价", "太贵"} & set(terms[:4]), found
    assert {"拉肚子", "食物中毒", "涨价", "太贵"} <= set(terms)
    assert not any("禾丰" in t for t in terms)
    # 外卖 is in 30% of the complaints — more than 食物中毒 — but in 55% of the everyday chatter.
    takeaway = sum("外卖" in t for t in incident)
    assert takeaway > dict((t.term, t.count) for t in found)["食物中毒"]
    assert "外卖" not in {t.term for t in themes(incident, baseline, exclude=["禾丰米线", "禾丰"], limit=100)}
    # Without the keywords excluded the brand still is no theme: it is in every mention of both.
    assert not any("禾丰" in t.term for t in themes(incident, baseline, limit=100))


def test_counts_are_per_mention_and_need_a_minimum():
    baseline = [f"禾丰米线今天的酸菜米线很好吃{i}" for i in range(200)]
    rant = "涨价涨价涨价，" * 50 + "拉肚子"
    incident = [rant] + ["禾丰米线吃完拉肚子了"] * 9 + ["禾丰米线的老板跑路了"]
    found = {t.term: t for t in themes(incident, baseline, exclude=["禾丰米线"])}
    assert found["拉肚子"].count == 10
    assert "涨价" not in found  # fifty times in one rant is one mention
    assert "跑路" not in found  # one mention is below the minimum
    assert any("跑路" in t.term for t in themes(incident, baseline, exclude=["禾丰米线"], min_count=1, min_z=0))


def test_phrases_replace_their_words_and_stop_words_never_show():
    baseline = ["鲜丰奶茶的杨枝甘露很好喝，环境也不错"] * 100 + ["鲜丰奶茶的店员很热情"] * 100
    incident = (["鲜丰奶茶后厨苍蝇乱飞，我们真的太恶心了[怒]"] * 12
                + ["鲜丰奶茶要求退款，客服不理人"] * 6 + ["鲜丰奶茶拒绝退款"] * 8)
    terms = [t.term for t in themes(incident, baseline, exclude=["鲜丰奶茶"], limit=20)]
    assert "苍蝇乱飞" in terms and "苍蝇" not in terms and "乱飞" not in terms
    assert "退款" in terms and "要求" not in terms and "拒绝" not in terms  # only ever next to 退款
    assert not {"我们", "真的", "太", "恶心", "[怒]", "怒"} & set(terms)  # stop words, affect, emoticons


def test_no_baseline_or_no_incident_gives_no_themes():
    assert themes(["鲜丰奶茶喝完拉肚子"] * 10, []) == []
    assert themes([], ["鲜丰奶茶很好喝"] * 10) == []
    assert format_themes([]) == ""


def test_the_result_is_a_plain_value():
    incident, baseline = _overlap()
    first = themes(incident, baseline, exclude=["禾丰米线", "禾丰"])
    assert themes(incident, list(reversed(baseline)), exclude=["禾丰", "禾丰米线"]) == first
    term, count, z = first[0]
    assert isinstance(first[0], Theme) and (term, count) == ("涨价", 50) and z > 5
    line = format_themes([Theme("拉肚子", 12, 6.1), Theme("异物", 8, 4.2), Theme("退款", 5, 3.3), Theme("客服", 4, 2.5)],
                         limit=3)
    assert line == "主要诉求：拉肚子 ×12 · 异物 ×8 · 退款 ×5"


def test_a_large_baseline_is_thinned_evenly():
    incident, baseline = _overlap()
    found = themes(incident, baseline * 10, exclude=["禾丰米线", "禾丰"], max_baseline=800)
    assert found == themes(incident, baseline, exclude=["禾丰米线", "禾丰"])


# -- largest story -------------------------------------------------------------------------------
def test_largest_story_is_the_most_reposted_root():
    quiet = make_mention(id=1, repost_count=2)
    viral = make_mention(id=2, repost_count=40, text="喝完拉肚子，曝光这家店")
    copies = [make_mention(id=10 + i, story_id=2, published_at=T0 + timedelta(minutes=i)) for i in range(3)]
    alone = make_mention(id=3)
    story = largest_story([quiet, *copies, viral, alone])
    assert story is not None and story.mention == viral and story.story_id == 2 and story.reposts == 40


def test_largest_story_without_its_root_is_shown_by_its_earliest_copy():
    copies = [make_mention(id=10 + i, story_id=7, published_at=T0 + timedelta(minutes=5 - i)) for i in range(4)]
    other = make_mention(id=20, repost_count=1)
    story = largest_story([*copies, other])
    assert story.story_id == 7 and story.reposts == 4 and story.mention == copies[-1]


def test_largest_story_counts_the_platforms_reposts_and_needs_some():
    ours = make_mention(id=1, repost_count=12)
    big_v = make_mention(id=2, reposts=5000, author_followers=2_000_000)
    assert largest_story([ours, big_v]).mention == big_v
    assert largest_story([make_mention(id=5), make_mention(id=6)]) is None
    assert largest_story([]) is None
    early, late = make_mention(id=8, repost_count=3), make_mention(id=9, repost_count=3, published_at=T0 + timedelta(1))
    assert largest_story([late, early]).mention == early  # ties: the earlier story
    unsaved = replace(make_mention(repost_count=2), id=None)
    assert largest_story([unsaved]).story_id is None
