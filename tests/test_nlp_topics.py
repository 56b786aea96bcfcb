"""Topic expressions, Aho–Corasick matching, crisis words — and their path into stored mentions
and the feedback loop (`monitor label`, `monitor nlp train --from-feedback`, `eval --feedback`)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError, UsageError
from monitor.storage import repo
from monitor.storage.models import SentimentFeedbackRow
from nlp import feedback
from nlp.crisis import CrisisLexicon
from monitor.core.errors import ExpressionError
from nlp.expr import parse
from nlp.topics import Topic, TopicMatcher
from tests.factories import T0, make_mention


def test_expression_logic():
    found = lambda *words: set(words)  # noqa: E731
    node = parse('(鲜丰 OR "xian feng") AND (投诉 OR 维权) AND NOT 广告')
    assert node.evaluate(found("鲜丰", "投诉"))
    assert node.evaluate(found("xian feng", "维权"))
    assert not node.evaluate(found("鲜丰"))
    assert not node.evaluate(found("鲜丰", "投诉", "广告"))
    assert parse("a b OR c").evaluate(found("c"))  # juxtaposition is AND, binding tighter than OR
    assert not parse("a b OR c").evaluate(found("a"))
    assert parse("NOT NOT a").evaluate(found("a"))
    assert parse("a and not b").evaluate(found("a"))  # operators are case-insensitive
    assert parse('"AND"').evaluate(found("AND"))  # a quoted operator is a phrase
    for bad, message in [("(a OR b", "missing ')'"), ("a OR", "expression ends"), ('"open', "unclosed quote"),
                         ("a )", "unexpected ')'"), ("", "empty expression"),
                         ("AND a", "unexpected 'AND' at position 1")]:
        with pytest.raises(ExpressionError, match=re.escape(message)):
            parse(bad)


def test_topic_matching_is_case_width_and_traditional_insensitive():
    m = TopicMatcher([
        Topic("鲜丰", ("鲜丰奶茶", "鲜丰"), exclude=("招聘",)),
        Topic("危机", expression="(鲜丰 OR Xianfeng) AND (投诉 OR 维权)"),
        Topic("微博专属", ("奶茶",), sources=("weibo",)),
    ])
    assert m.match("鮮豐奶茶 維權到底", "weibo") == ("鲜丰", "危机", "微博专属")
    assert m.match("ＸＩＡＮＦＥＮＧ投诉", "rss") == ("危机",)
    assert m.match("鲜丰奶茶招聘店员", "rss") == ()  # excluded
    assert m.match("奶茶", "rss") == () and m.match("奶茶", "weibo") == ("微博专属",)  # per-source topic
    assert m.match("", None) == ()


def test_thousands_of_keywords_in_one_automaton():
    words = tuple(f"品牌{i}号" for i in range(5000))
    m = TopicMatcher([Topic("大词表", words), Topic("其他", ("别的",))])
    assert m.match("今天买了品牌4321号的东西") == ("大词表",)
    assert m.match("品牌号") == ()


def test_crisis_words_found_in_folded_text_with_word_boundaries_for_numbers():
    lexicon = CrisisLexicon()
    assert lexicon.find("喝了鲜丰奶茶食物中毒，已投诉到12315") == ("食物中毒", "投诉", "12315")
    assert lexicon.find("３１５晚会曝光了这家店") == ("315", "曝光")
    assert lexicon.find("价格23150元") == ()  # 315 inside a longer number is not a hit
    assert lexicon.find("電池自燃，要求召回") == ("自燃", "召回")
    assert lexicon.find("今天天气很好") == ()
    configured = CrisisLexicon.from_config(parse_config("crisis: {words: [爆单了], builtin: false}").crisis)
    assert configured.find("投诉：又爆单了") == ("爆单了",)
    extended = CrisisLexicon.from_config(parse_config("crisis: {words: [塌房]}").crisis)
    assert extended.find("偶像塌房，粉丝维权") == ("塌房", "维权")


def test_topic_config_forms_and_errors():
    cfg = parse_config("""
sources: [{name: wb, type: jsonl, path: /tmp/x.jsonl}]
topics:
  - {name: a, keywords: [鲜丰]}
  - {name: b, expression: '鲜丰 AND (投诉 OR 维权)', exclude: [招聘], sources: [wb]}
""")
    assert [t.name for t in cfg.topics] == ["a", "b"] and cfg.topics[1].sources == ("wb",)
    for text, message in [
        ("topics: [{name: a}]", "topics[0]: give either keywords"),
        ("topics: [{name: a, keywords: [x], expression: y}]", "topics[0]: give either keywords"),
        ("topics: [{name: a, expression: '(x OR'}]", "topics[0]: expression: expression ends"),
        ("topics: [{name: a, keywords: [x], sources: [nope]}]", "topics[0].sources[0]: unknown source 'nope'"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert any(message in p for p in info.value.problems), info.value.problems


def test_crisis_words_are_stored_with_the_mention(db):
    with db.session() as s:
        [stored] = repo.insert_mentions(s, [make_mention(external_id="c1", crisis_words=("维权", "315"))])
        [plain] = repo.insert_mentions(s, [make_mention(external_id="c2")])
    with db.session() as s:
        back, other = repo.mentions_by_ids(s, [stored.id, plain.id])
    assert back.crisis_words == ("维权", "315") and other.crisis_words == ()


def test_labels_are_stored_with_actor_and_split_into_train_and_held_out(db):
    with db.session() as s:
        stored = repo.insert_mentions(s, [make_mention(external_id=f"f{i}", text=f"第{i}条 难喝", score=0.8,
                                                       label="positive") for i in range(40)])
    with db.session() as s:
        fb = feedback.record(s, stored[0].id, "负面", "小王", T0)
        assert (fb.label, fb.actor, fb.previous_label, fb.previous_score) == ("negative", "小王", "positive", 0.8)
        for m in stored:
            feedback.record(s, m.id, "negative", "小李", T0)
        with pytest.raises(UsageError, match="no mention #999999"):
            feedback.record(s, 999999, "negative", "小王", T0)
        with pytest.raises(UsageError, match="expected one of negative, neutral, positive"):
            feedback.record(s, stored[0].id, "bad", "小王", T0)
    with db.session() as s:
        assert len(s.scalars(select(SentimentFeedbackRow)).all()) == 41
        train, held = feedback.examples(s)
    assert len(train) + len(held) == 40 and held and train  # the newest label per mention, split by mention
    assert all(e.label == 0 for e in train + held)
    with db.session() as s:
        assert feedback.examples(s)[1] == held  # the same split every time


def test_label_train_from_feedback_and_eval_before_after(tmp_path):
    """The loop on a real SQLite database through the CLI: label → train --from-feedback → eval --feedback."""
    from monitor.storage import Database

    data = tmp_path / "data"
    db = Database(f"sqlite:///{data / 'monitor.db'}")
    db.migrate()
    texts = [f"{i}号店的芋泥啵啵{'一般般吧' if i % 2 else '还行吧'}" for i in range(60)]
    with db.session() as s:
        stored = repo.insert_mentions(s, [make_mention(external_id=f"m{i}", text=t) for i, t in enumerate(texts)])
    db.dispose()
    runner = CliRunner()
    env = {"MONITOR_DATA_DIR": str(data), "MONITOR_ACTOR": "值班小王"}
    result = runner.invoke(app, ["label", str(stored[0].id), "negative"], env=env)
    assert result.exit_code == 0 and "labelled negative by 值班小王" in result.output
    for m in stored[1:]:
        assert runner.invoke(app, ["label", str(m.id), "negative", "--as", "小李"], env=env).exit_code == 0
    assert runner.invoke(app, ["label", "99999", "negative"], env=env).exit_code == 1

    model = tmp_path / "v2.json.gz"
    result = runner.invoke(app, ["nlp", "train", "--from-feedback", "--out", str(model)], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["held_out_feedback"] > 0 and summary["model"].startswith("v2-nb-")

    result = runner.invoke(app, ["nlp", "eval", "--feedback", "--model", str(model)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == summary["model"] and report["before"]["model"].startswith("default-nb-")
    assert report["n"] == report["before"]["n"] == summary["held_out_feedback"]
    assert report["accuracy"] >= report["before"]["accuracy"]  # the corrections were learned
