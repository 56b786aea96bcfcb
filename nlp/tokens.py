"""Tokens and features for the sentiment model.

``tokenize(text)`` segments cleaned text like jieba's dictionary mode
(``HMM=False`` — fast and deterministic; see :mod:`nlp.segment`) and keeps
Weibo emoticons such as ``[怒]`` as single tokens. ``features(tokens)`` turns tokens into a sparse ``{feature: value}``:

* every word, and every adjacent word pair as a bigram (``不_好``);
* negation: the word after a negator (不, 没有, 别 …) in the same clause becomes
  ``!word``; two negators cancel out; degree words do not use up the scope, so
  不是很满意 gives ``!满意`` (a wider scope measured worse on weibo2018);
* degree: a word after a degree adverb (非常, 太, 有点 …) gets that adverb's
  weight as its value (2.0 for 非常, 0.6 for 有点) instead of 1;
* emoticons are words of their own (``[怒]``; present or not, like every word);
* position: the words of the first clause again as ``^word`` and of the last
  clause as ``$word`` — posts tend to open with the topic and close with the verdict;
* ``!`` and ``?`` as features of their own (they carry emphasis).

``char_features(text)`` is a second view for ``nblr`` models: character unigrams
and bigrams within clauses, which needs no segmentation at all.
"""

from __future__ import annotations

import re

from nlp.segment import cut

NEGATORS = frozenset(
    "不 没 没有 无 非 未 别 勿 莫 甭 不是 不会 不要 不能 不用 不想 不够 不太 不怎么 不算 并非 绝非 毫无 从不 从未 "
    "从来不 从来没有 绝不 决不 并不 并没有 还没 还没有 再也不 一点也不 一点都不 根本不 根本没有".split()
)
DEGREE = {
    **dict.fromkeys("极 极其 极度 超 超级 太 太过 巨 贼 最 特别 特 非常 十分 万分 异常 格外 尤其 绝对 简直 实在 "
                    "真的 真是 完全 彻底 严重".split(), 2.0),
    **dict.fromkeys("很 挺 蛮 真 相当 越来越 更 更加 还挺".split(), 1.5),
    **dict.fromkeys("比较 较 还 还算 算是".split(), 0.8),
    **dict.fromkeys("有点 有点儿 有些 稍 稍微 略 略微 一点 些许 有一点".split(), 0.6),
}
BOUNDARIES = frozenset(",.;:!?~，。；：！？、…~—()（）【】《》<>\"'“”‘’\n\t|/\\#")
EMPHASIS = frozenset("!?！？")
NEG_SCOPE = 1
MAX_TOKENIZED_CHARS = 5000  # sentiment is decided well within the first few thousand characters

_EMOTICON = re.compile(r"(\[[^\[\]\s]{1,10}\])")
def tokenize(text: str) -> list[str]:
    """Words of cleaned text (lower-cased), emoticons kept whole, whitespace dropped."""
    if not text:
        return []
    text = text[:MAX_TOKENIZED_CHARS].lower()
    if "[" not in text:
        return cut(text)
    out: list[str] = []
    for i, part in enumerate(_EMOTICON.split(text)):
        if i % 2:
            out.append(part)
        elif part:
            out.extend(cut(part))
    return out


def is_emoticon(token: str) -> bool:
    return len(token) > 2 and token[0] == "[" and token[-1] == "]"


def features(tokens: list[str]) -> dict[str, float]:
    """Sparse features of one document (see the module docstring)."""
    f: dict[str, float] = {}
    prev: str | None = None
    negated = False
    scope = 0
    degree = 1.0
    first = True  # still in the first clause
    clause: list[str] = []
    last: list[str] = []
    for w in tokens:
        if w in BOUNDARIES:
            if w in EMPHASIS:
                f["!" if w in "!！" else "?"] = 1.0
            prev, negated, scope, degree = None, False, 0, 1.0
            if clause:
                first, last, clause = False, clause, []
            continue
        clause.append(w)
        if first:
            f["^" + w] = 1.0
        if prev is not None:
            f[prev + "_" + w] = 1.0
        prev = w
        if w in NEGATORS:
            negated = not negated if scope else True
            scope = NEG_SCOPE
            f[w] = 1.0
            continue
        weight = DEGREE.get(w)
        if weight is not None:
            degree = weight
            f[w] = 1.0
            continue
        if w[0] == "[" and is_emoticon(w):
            f[w] = 1.0
        else:
            name = "!" + w if negated else w
            if f.get(name, 0.0) < degree:
                f[name] = degree
        degree = 1.0
        if scope:
            scope -= 1
            if not scope:
                negated = False
    for w in clause or last:
        f["$" + w] = 1.0
    return f


_CLAUSE_SPLIT = re.compile(r"[\s,.;:!?~，。；：！？、…()（）【】《》<>\"'“”‘’|/\\#—]+")


def char_features(text: str) -> dict[str, float]:
    """The second view, which needs no segmentation: character unigrams ``|x`` and bigrams ``~xy``
    within clauses, and emoticons as ``|[怒]``. Its names never clash with word features
    (``|`` and ``~`` are clause boundaries, never the start of a word)."""
    text = text[:MAX_TOKENIZED_CHARS].lower()
    f: dict[str, float] = {}
    if "[" in text:
        for emoticon in _EMOTICON.findall(text):
            f["|" + emoticon] = 1.0
        text = _EMOTICON.sub(" ", text)
    for part in _CLAUSE_SPLIT.split(text):
        prev = ""
        for ch in part:
            f["|" + ch] = 1.0
            if prev:
                f["~" + prev + ch] = 1.0
            prev = ch
    return f


def is_char_feature(name: str) -> bool:
    return name[0] in "|~"
