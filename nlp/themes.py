"""What people are angry about: the terms most over-represented in an incident's negatives.

``themes(incident, baseline, exclude=topic keywords)`` compares the negative
mentions of an incident with the topic's recent baseline by the weighted log-odds
ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
"Fightin' Words"), on document frequencies: each term counts once per mention, so
one long rant or a repost chain that repeats a phrase does not dominate. A term in
*y_i* of the *N_i* incident mentions and *y_j* of the *N_j* baseline mentions, with
prior pseudo-counts from the combined corpus ``a = prior × (y_i + y_j)``,
``a_0 = prior × (N_i + N_j)`` (the prior says "as common as everywhere else")::

    δ = log((y_i+a) / (N_i+a_0-y_i-a)) − log((y_j+a) / (N_j+a_0-y_j-a))
    z = δ / sqrt(1/(y_i+a) + 1/(N_i+a_0-y_i-a) + 1/(y_j+a) + 1/(N_j+a_0-y_j-a))

With counts per mention each term is a yes/no per document, so the "rest" of the
multinomial is the mentions without the term; the variance keeps both outcomes
(it matters for terms in most mentions). Unlike a plain ratio, z shrinks rare terms
toward "not special": a word seen twice and never before does not outrank one seen
forty times against a baseline of three. ``prior`` 0.1: a term absent from the baseline passes z 1.96
at 8 incident mentions against a baseline as large, at 3 against one ten times as
large — sooner than with a prior either weaker (0.01) or stronger (1).

Candidate terms are the words of the incident (:func:`nlp.segment.cut`) without
stop words, emoticons, numbers, pure affect (恶心, 垃圾: *that* people are angry, not
*about what*), the topic's own keywords (cut out of the text before segmenting, so
鲜丰奶茶 leaves no 鲜/丰/奶茶 behind) and single characters other than a few that
name a complaint (贵, 脏, 馊 …); plus adjacent pairs of them (苍蝇+乱飞). Every
candidate is then counted as a substring in both corpora alike (Aho–Corasick), so
only the incident is segmented: a baseline costs a scan, not a segmentation, and a
baseline of more than ``MAX_BASELINE`` texts is thinned evenly (rates are what
matter). A pair is shown as a phrase when it is over-represented itself, its
words mostly occur together and neither is a theme of its own anyway (怀疑食物中毒
adds nothing to 食物中毒); a word then gives way to its phrase when most of its
mentions are the phrase's.

Pure: texts in, themes out; no clock, no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

from nlp.crisis import BUILTIN_CRISIS_WORDS
from nlp.segment import cut
from nlp.tokens import DEGREE, NEGATORS

if TYPE_CHECKING:
    from monitor.core.domain import Mention

MIN_COUNT = 2  # a theme is named by at least this many incident mentions
MIN_Z = 1.96
PRIOR = 0.1  # prior pseudo-counts per mention of the combined corpus containing the term
MAX_BASELINE = 5000  # a larger baseline is thinned evenly: rates are what matter, and scanning is the cost
MAX_TEXT_CHARS = 1000  # the complaint is stated early; long posts would only cost time
PHRASE_COHESION = 0.5  # a phrase's count ≥ this share of each of its words' counts
PHRASE_COVERS = 0.8  # a word gives way to its phrase when ≥ this share of its mentions are the phrase's

# Single characters that name a complaint by themselves (太贵了, 有点脏, 馊了).
MEANINGFUL_CHARS = frozenset("贵脏臭馊虫毒坑骗假慢烂霉咸苦酸辣甜涨吐疼痛锈")
STOP_WORDS = frozenset(
    """我们 你们 他们 她们 它们 咱们 大家 自己 别人 人家 这个 那个 这些 那些 这样 那样 这么 那么 这种 那种 这里 那里
    什么 怎么 怎么样 为什么 为啥 哪里 哪个 多少 一个 一下 一些 一点 一次 一直 一样 一起 一定 一般 一家 一杯 已经 还是
    还有 然后 但是 可是 不过 因为 所以 而且 如果 虽然 或者 只是 只有 就是 就算 的话 还要 并且 以及 其实 当然 毕竟 果然
    竟然 居然 简直 真的 真是 确实 其他 另外 之后 之前 以后 以前 时候 现在 今天 昨天 明天 刚才 刚刚 最近 终于 马上 每次
    每天 一天 晚上 早上 下午 中午 上午 今年 去年 可以 可能 应该 需要 必须 能够 觉得 感觉 知道 认为 发现 希望 看到 听说
    是不是 有没有 好像 似乎 到底 比如 那边 这边 为了 关于 对于 根据 通过 之类 以上 以下 东西 事情 问题 情况 结果 地方
    转发 转发微博 网友 回复 评论 微博 视频 链接 全文 原文 展开 收起 哈哈 哈哈哈 呵呵 嗯嗯 啊啊 真的假的 坚决 不好 像是
    只会 不会 不能 不要 总是 经常 还会 都是 也是 只要 一下子 喝完 吃完 喝了 吃了 买了 点了 买到 吃到 喝到 收到 遇到
    去了 来了 有人 没人 有点儿 不止 开始 出现 发生 怀疑 表示 以为""".split()
) | NEGATORS | frozenset(DEGREE)
# Words that say how people feel, not what about.
AFFECT_WORDS = frozenset(
    """恶心 垃圾 气人 生气 愤怒 无语 失望 崩溃 郁闷 难过 伤心 痛苦 心累 倒霉 糟心 讨厌 后悔 糟糕 差劲 离谱 吐槽 差评
    好评 喜欢 满意 开心 高兴 太气人 气死 恶心死 无语死 服了 呵呵 醉了 绝了 哭了 心寒 寒心 可怕 害怕 担心 烦 吐了""".split()
)
# Numbers with an optional measure word: 一股, 十几次, 一个半, 18.
_NUMERAL = re.compile(r"[0-9.一二两三四五六七八九十百千万几半多]+(?:[个只次杯股份件家天块元位遍趟口包瓶盒袋斤克分秒年月日号点条张层种样碗片根][半多]?)?")
_KEEP_DIGITS = frozenset(w for w in BUILTIN_CRISIS_WORDS if w.isdigit())  # 315, 12315

_REPOST_HANDLE = re.compile(r"//\s*@[^:：\s]{1,30}\s*[:：]|@[^\s@:：,，。!！?？、;；\[\]()（）]{1,20}[:：]?")
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,10}\]")
# Clause boundaries: no phrase spans them.
_BOUNDARY = re.compile(r"[^\u3400-\u9fff\uf900-\ufaffa-zA-Z0-9+&._%\-]+")


class Theme(NamedTuple):
    term: str
    count: int  # incident mentions containing it
    z: float


def _exclusion(exclude: Iterable[str]) -> re.Pattern | None:
    words = sorted({w.strip().lower() for w in exclude if w and w.strip()}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words))) if words else None


def _is_word(token: str) -> bool:
    """A token that can be a theme on its own."""
    if len(token) == 1:
        return token in MEANINGFUL_CHARS
    if token in STOP_WORDS or token in AFFECT_WORDS:
        return False
    if _NUMERAL.fullmatch(token):
        return token in _KEEP_DIGITS
    return not token.isascii() or token.isalnum()


def _prepare(text: str, excluded: re.Pattern | None) -> str:
    """Lower case, without repost handles, emoticons and the topic's keywords (each a boundary)."""
    text = text[:MAX_TEXT_CHARS].lower()
    if "@" in text:
        text = _REPOST_HANDLE.sub("|", text)
    if "[" in text:
        text = _EMOTICON.sub("|", text)
    return excluded.sub("|", text) if excluded is not None else text


def _candidates(text: str) -> set[str | tuple[str, str]]:
    """The words of a prepared text and the pairs of adjacent words."""
    out: set[str | tuple[str, str]] = set()
    for clause in _BOUNDARY.split(text):
        if not clause:
            continue
        prev = None
        for token in cut(clause):
            if not _is_word(token):
                prev = None
                continue
            out.add(token)
            if prev is not None and not (prev[-1].isascii() and token[0].isascii()):
                out.add((prev, token))
            prev = token
    return out


def _doc_frequencies(texts: Sequence[str], terms: Iterable[str]) -> dict[str, int]:
    """How many of ``texts`` contain each term (as a substring; ASCII terms only as whole words)."""
    import ahocorasick

    df = dict.fromkeys(terms, 0)
    if not df:
        return df
    plain, bounded = ahocorasick.Automaton(), ahocorasick.Automaton()
    for term in df:
        if term[0].isascii() or term[-1].isascii():
            bounded.add_word(term, term)
        else:
            plain.add_word(term, term)
    automata = [a for a in (plain, bounded) if len(a)]
    for a in automata:
        a.make_automaton()
    for text in texts:
        found = {term for _, term in plain.iter(text)} if len(plain) else set()
        if len(bounded):
            found.update(term for end, term in bounded.iter(text) if _whole_word(text, end, term))
        for term in found:
            df[term] += 1
    return df


def _whole_word(text: str, end: int, term: str) -> bool:
    """``315`` in 「315曝光」 but not in 「23150元」."""
    start = end - len(term)
    if term[0].isascii() and term[0].isalnum() and start >= 0 and text[start].isascii() and text[start].isalnum():
        return False
    after = end + 1
    return not (term[-1].isascii() and term[-1].isalnum() and after < len(text)
                and text[after].isascii() and text[after].isalnum())


def _z(yi: int, ni: int, yj: int, nj: int, prior: float) -> float | None:
    a, a0 = prior * (yi + yj), prior * (ni + nj)
    rest_i, rest_j = ni + a0 - yi - a, nj + a0 - yj - a
    if rest_i <= 0 or rest_j <= 0:  # in every mention of both: nothing to contrast
        return None
    delta = math.log((yi + a) / rest_i) - math.log((yj + a) / rest_j)
    return delta / math.sqrt(1 / (yi + a) + 1 / rest_i + 1 / (yj + a) + 1 / rest_j)


def _show(term: str | tuple[str, str]) -> str:
    return term if isinstance(term, str) else term[0] + term[1]


def themes(incident: Iterable[str], baseline: Iterable[str], *, exclude: Iterable[str] = (), limit: int = 8,
           min_count: int = MIN_COUNT, min_z: float = MIN_Z, prior: float = PRIOR,
           max_baseline: int = MAX_BASELINE) -> list[Theme]:
    """The terms and phrases most over-represented in ``incident`` against ``baseline``, highest z first.

    ``exclude``: the topic's keywords and brand names (they are in every mention).
    An empty baseline gives no themes: there is nothing to be over-represented against.
    """
    exclude = tuple(exclude)
    excluded = _exclusion(exclude)
    inc = [_prepare(t, excluded) for t in incident if t]
    base = [t for t in baseline if t]
    if len(base) > max_baseline:
        step = len(base) / max_baseline
        base = [base[int(k * step)] for k in range(max_baseline)]
    if not inc or not base:
        return []
    base = [_prepare(t, excluded) for t in base]
    seen: dict[str, set] = {}  # copies and reposts are segmented once
    tally: dict[str | tuple[str, str], int] = {}
    for text in inc:
        terms = seen.get(text)
        if terms is None:
            terms = seen[text] = _candidates(text)
        for term in terms:
            tally[term] = tally.get(term, 0) + 1
    # Only terms that could reach min_z even if the baseline never had them are worth a scan.
    floor = min_count
    while floor < len(inc) and (_z(floor, len(inc), 0, len(base), prior) or 0.0) < min_z:
        floor += 1
    candidates = {term: _show(term) for term, n in tally.items() if n >= floor}
    strings = set(candidates.values())
    inc_df, base_df = _doc_frequencies(inc, strings), _doc_frequencies(base, strings)
    df = {term: inc_df[shown] for term, shown in candidates.items()}
    z = {}
    for term, shown in candidates.items():
        if df[term] >= min_count:
            score = _z(df[term], len(inc), base_df[shown], len(base), prior)
            if score is not None and score >= min_z:
                z[term] = score
    chosen: dict[str | tuple[str, str], float] = {t: v for t, v in z.items() if isinstance(t, str)}
    covered: set[str] = set()
    for term, score in z.items():
        if isinstance(term, str):
            continue
        count = df[term]
        # A word that mostly occurs inside the phrase gives way to it; a phrase one of whose
        # words is a theme of its own anyway (怀疑+食物中毒, 要求+退款) adds nothing.
        # A word found mostly beside a broader theme (要求 in 要求退款) says no more than that theme.
        covers = [df.get(word, 0) * PHRASE_COVERS <= count for word in term]
        if all(c or word not in chosen for c, word in zip(covers, term)):
            if count >= PHRASE_COHESION * max(df.get(word, count) for word in term):
                chosen[term] = score
                covered.update(word for c, word in zip(covers, term) if c)
        else:
            (a, b), (covers_a, covers_b) = term, covers
            if covers_a and not covers_b:
                covered.add(a)
            if covers_b and not covers_a:
                covered.add(b)
    words = [w.lower() for w in exclude]
    best: dict[str, Theme] = {}
    for term, score in chosen.items():
        if isinstance(term, str) and term in covered:
            continue
        shown = _show(term)
        if any(w in shown or shown in w for w in words):
            continue
        theme = Theme(shown, df[term], round(score, 2))
        if shown not in best or best[shown].z < theme.z:
            best[shown] = theme
    ranked = sorted(best.values(), key=lambda t: (-t.z, -t.count, t.term))
    return _drop_overlaps(ranked[:3 * limit])[:limit]


def _drop_overlaps(ranked: list[Theme]) -> list[Theme]:
    """Of two themes where one contains the other, the longer when it is named by about as many
    mentions (涨价 ×50 over 涨 ×50, 太贵 ×30 over 贵 ×33), else the shorter (拉肚子 ×40 over
    全部拉肚子 ×3)."""
    drop = set()
    for short in ranked:
        for long in ranked:
            if len(short.term) < len(long.term) and short.term in long.term:
                drop.add(short.term if long.count >= PHRASE_COVERS * short.count else long.term)
    return [t for t in ranked if t.term not in drop]


def format_themes(found: Sequence[Theme], limit: int = 5, *, label: str = "主要诉求") -> str:
    """「主要诉求：拉肚子 ×12 · 异物 ×8 · 退款 ×5」; empty when there is nothing to say."""
    if not found:
        return ""
    return f"{label}：" + " · ".join(f"{t.term} ×{t.count}" for t in found[:limit])


@dataclass(frozen=True)
class Story:
    """The most spread story among some mentions: its root (or, when the root is not among them,
    the earliest copy seen) and how often it was reposted, as best known."""

    story_id: int | None  # the root mention's id (None: not stored yet)
    mention: Mention
    reposts: int


def largest_story(mentions: Iterable[Mention]) -> Story | None:
    """The story with the most reposts (最大传播), or None when nothing was reposted.

    A story is a root mention and the copies dedup merged into it (``story_id``). Its
    reposts are the most of: the root's ``repost_count`` (copies merged so far), the
    copies among ``mentions``, and the platform's own repost count of the root
    (``reposts``) — whichever knows more. Ties go to the earlier story.
    """
    stories: dict[object, list] = {}  # key → [root or None, earliest copy, copies seen]
    for m in mentions:
        key = m.story_id if m.story_id is not None else (m.id if m.id is not None else ("new", m.source, m.external_id))
        entry = stories.setdefault(key, [None, None, 0])
        if m.story_id is None:
            entry[0] = m
        else:
            entry[2] += 1
            if entry[1] is None or m.published_at < entry[1].published_at:
                entry[1] = m
    best: Story | None = None
    best_key = None
    for key, (root, copy, copies) in stories.items():
        shown = root if root is not None else copy
        reposts = max(copies, root.repost_count if root else 0, (root.reposts or 0) if root else 0)
        if reposts <= 0:
            continue
        rank = (reposts, -shown.published_at.timestamp())
        if best is None or rank > best_key:
            best_key = rank
            best = Story(key if isinstance(key, int) else None, shown, reposts)
    return best
