"""Crisis words: terms that turn an ordinary complaint into a possible crisis
(维权, 曝光, 召回, 自燃, 致癌, 315 …). Every mention's hits are stored with it
(``Mention.crisis_words``) for the alert rules to weigh.

The built-in lexicon below can be extended (or replaced) in the config::

    crisis:
      words: [爆雷, 跑路]      # added to the built-in list
      builtin: true           # false: only the configured words
"""

from __future__ import annotations

from typing import Iterable

from nlp.matching import PhraseIndex, fold_text

BUILTIN_CRISIS_WORDS: tuple[str, ...] = (
    # consumer rights and complaints
    "维权", "曝光", "投诉", "举报", "退款", "索赔", "赔偿", "起诉", "律师函", "立案", "315", "12315", "黑猫投诉",
    "消协", "市场监管", "虚假宣传", "欺诈", "诈骗", "骗子", "霸王条款", "强制消费", "退货难",
    # product safety
    "召回", "爆炸", "自燃", "起火", "中毒", "食物中毒", "致癌", "超标", "有毒", "异物", "变质", "过期", "发霉",
    "拉肚子", "上吐下泻", "住院", "过敏", "质量问题", "安全隐患", "事故", "伤亡", "死亡", "缺陷",
    # data, money and the company
    "泄露", "数据泄露", "隐私泄露", "信息泄露", "黑客", "爆雷", "跑路", "暴雷", "欠薪", "裁员", "罢工", "倒闭", "破产",
    # authorities and media
    "约谈", "罚款", "处罚", "下架", "停业整顿", "吊销",
)


# Everyday complaint vocabulary: stored with the mention like every crisis word, but on its
# own it does not raise an alert's severity (a wave of 投诉/退款 is what negative_spike already
# measures). Safety, legal, regulatory, data and fraud words — and words added in the config — do.
COMPLAINT_WORDS: frozenset[str] = frozenset({
    "投诉", "举报", "退款", "索赔", "赔偿", "骗子", "霸王条款", "强制消费", "退货难", "黑猫投诉", "质量问题",
})


def raises_severity(word: str) -> bool:
    """Whether a crisis word on its own is reason to raise an alert one level."""
    return word not in COMPLAINT_WORDS


class CrisisLexicon:
    """``CrisisLexicon(words).find(text)`` → the crisis words in ``text`` (folded form, first occurrence first)."""

    def __init__(self, words: Iterable[str] = BUILTIN_CRISIS_WORDS):
        self._index = PhraseIndex(words)

    @classmethod
    def from_config(cls, crisis) -> "CrisisLexicon":
        """From the ``crisis:`` config section (None: the built-in lexicon)."""
        if crisis is None:
            return cls()
        builtin = BUILTIN_CRISIS_WORDS if getattr(crisis, "builtin", True) else ()
        return cls((*builtin, *getattr(crisis, "words", ())))

    @property
    def words(self) -> list[str]:
        return list(self._index.phrases)

    def find(self, text: str) -> tuple[str, ...]:
        return self.find_folded(fold_text(text or ""))

    def find_folded(self, folded: str) -> tuple[str, ...]:
        hits = self._index.find_ordered(folded)
        # a word inside a longer hit adds nothing (食物中毒 already says 中毒)
        return tuple(h for h in hits if not any(h != o and h in o for o in hits))
