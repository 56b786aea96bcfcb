"""Cleaning social Chinese text, segmentation and features."""

from __future__ import annotations

import jieba

from nlp.clean import clean, fold, strip_pinyin, to_text
from nlp.segment import cut
from nlp.tokens import char_features, features, is_char_feature, tokenize


def test_repost_chain_scores_the_authors_own_words_and_keeps_the_chain():
    c = clean("太差了！//@小王:同意[怒]//@老李: 鲜丰奶茶退款难")
    assert c.own == "太差了!"
    assert c.chain == (("小王", "同意[怒]"), ("老李", "鲜丰奶茶退款难"))
    assert "鲜丰奶茶退款难" in c.text  # matching still sees the whole post
    assert c.scored == c.own


def test_a_bare_repost_is_scored_on_the_nearest_reposted_words():
    c = clean("转发微博//@小王:鲜丰奶茶喝了拉肚子")
    assert c.own == ""
    assert c.scored == "鲜丰奶茶喝了拉肚子"


def test_markers_urls_mentions_and_entities():
    c = clean("{%#鲜丰奶茶维权#%} 喝了就拉肚子 @鲜丰奶茶官方 http://t.cn/A6abc 详情&gt;&gt;")
    assert c.own == "喝了就拉肚子 详情>>"
    assert "#鲜丰奶茶维权#" in c.text and "http" not in c.text and "@鲜丰奶茶官方" in c.text


def test_full_width_forms_traditional_chinese_and_repeated_punctuation():
    assert clean("ＡＢＣ３１５投訴！！！！").text == "ABC315投诉!"
    assert clean("危機公關").text == "危机公关"


def test_emoticons_are_kept_and_unicode_emoji_mapped():
    assert clean("难喝😡😡").text == "难喝[怒][怒]"
    assert tokenize("难喝[怒][泪]") == ["难喝", "[怒]", "[泪]"]


def test_pinyin_annotations_are_removed():
    assert strip_pinyin("內(nèi)容運(yùn)營(yíng)") == "內容運營"
    assert clean("內(nèi)容運(yùn)營(yíng)很好").text == "内容运营很好"
    assert clean("鲜丰(xf)奶茶").text == "鲜丰(xf)奶茶"  # a real parenthesis stays


def test_any_input_gives_a_defined_result():
    assert clean(b"\xff\xfe\xe5\xa5\xbd").text.endswith("好")  # invalid UTF-8 bytes are replaced
    assert clean("ab\ud800c").text == "ab?c"  # a lone surrogate
    assert clean(None).text == "" and clean("").scored == ""
    assert to_text(123) == "123"
    long = clean("差" * 100_000)
    assert 0 < len(long.text) <= 20_000
    assert fold("\x00控制\x07字符") == " 控制 字符"


def test_segmentation_is_jiebas_dictionary_mode():
    for text in ["鲜丰奶茶的芋泥波波太好喝了，开心", "iPhone15 发布会 3.5mm 耳机孔", "南京市长江大桥", "不好吃也不便宜"]:
        assert cut(text) == [w for w in jieba.lcut(text, HMM=False) if not w.isspace()]


def test_features_mark_negation_degree_and_bigrams():
    f = features(tokenize("不是很满意"))
    assert "!满意" in f and "满意" not in f  # the degree word does not use up the negation scope
    assert f["!满意"] == 1.5  # 很 is a degree word
    assert "不是_很" in f
    f = features(tokenize("不好吃"))
    assert "!好吃" in f and "不_好吃" in f
    assert "好吃" in features(tokenize("不会不好吃"))  # two negators cancel out
    assert "好吃" in features(tokenize("不，好吃"))  # negation ends with the clause
    f = features(tokenize("非常好吃[赞][赞]"))
    assert f["好吃"] == 2.0 and f["[赞]"] == 1.0  # 非常 doubles; an emoticon is a word of its own
    f = features(tokenize("排队很久，不过很好喝"))
    assert {"^排队", "$不过", "$好喝"} <= set(f) and "^好喝" not in f  # first and last clause


def test_the_character_view_needs_no_segmentation_and_never_clashes_with_words():
    f = char_features("难喝！差评[怒]")
    assert {"|难", "|喝", "~难喝", "|差", "~差评", "|[怒]"} <= set(f)
    assert "~喝差" not in f  # bigrams stay within a clause
    words = features(tokenize("难喝！差评[怒] ~ | 不好"))
    assert words and not any(is_char_feature(k) for k in words)
