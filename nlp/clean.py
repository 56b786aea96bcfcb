"""Cleaning for social Chinese text, before scoring and matching.

``clean(text)`` returns a :class:`Cleaned` with

* ``text`` — the whole post normalised: HTML entities decoded, full-width forms
  folded to ASCII, pinyin annotations dropped (``內(nèi)容`` → ``内容``), 繁→简
  (OpenCC ``t2s``), URLs removed, ``{%...%}`` markers unwrapped, repeated
  punctuation collapsed, whitespace squeezed. Topic and crisis-word matching
  run on it.
* ``own`` — the author's own words: the part before the first ``//@user:``
  repost link, without @mentions and ``{%...%}`` blocks. Sentiment is scored on it.
* ``chain`` — the reposted voices ``(user, words)`` after it, kept for context.

Emoticons such as ``[怒]`` stay in the text (the tokenizer keeps them as one
token); a few common Unicode emoji are mapped to their Weibo names. Any input —
bytes that are not UTF-8, lone surrogates, control characters — gives a
defined result; nothing here raises.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache

from monitor.core.text import ZERO_WIDTH

MAX_INPUT_CHARS = 20_000  # a 100k-char post is cleaned from its first 20k chars

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_CONTROL = dict.fromkeys([c for c in range(32) if c not in (9, 10)] + [127], " ")
_TRANSLATE = _FULLWIDTH | ZERO_WIDTH | _CONTROL | {ord("\xa0"): " "}

# Unicode emoji → the Weibo emoticon with the same meaning, so both count alike.
EMOJI = {
    "😡": "[怒]", "😠": "[怒]", "🤬": "[怒骂]", "😭": "[泪]", "😢": "[泪]", "😤": "[哼]",
    "🤮": "[吐]", "🤢": "[吐]", "😷": "[生病]", "😞": "[失望]", "💔": "[伤心]", "😒": "[白眼]",
    "👍": "[赞]", "👏": "[鼓掌]", "😂": "[笑cry]", "🤣": "[笑cry]", "😄": "[哈哈]", "😀": "[哈哈]", "😃": "[哈哈]", "😁": "[嘻嘻]",
    "😊": "[可爱]", "😍": "[花心]", "🥰": "[爱你]", "❤": "[心]", "❤️": "[心]", "🌹": "[鲜花]",
    "💪": "[加油]", "🙏": "[作揖]",
}

_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_SYLLABLE = rf"[a-zA-Zü{_TONED}]{{1,6}}[1-5]?"
_HAN = r"[\u3400-\u9fff\uf900-\ufaff]"
# A run of two or more annotated characters: 內(nèi)容(róng) …
_PINYIN_RUN = re.compile(rf"(?:{_HAN}\({_SYLLABLE}\)){{2,}}")
# A single annotated character only when the annotation is clearly pinyin (tone mark or digit).
_PINYIN_ONE = re.compile(rf"({_HAN})\((?=[^)]*(?:[{_TONED}]|\d\)))({_SYLLABLE})\)")
_PINYIN_PAREN = re.compile(rf"\({_SYLLABLE}\)")

_URL = re.compile(r"(?:https?|ftp)://[^\s\u3000-\u303f\uff00-\uffef<>\"'\u4e00-\u9fff]*"
                  r"|www\.[a-z0-9-]+\.[^\s\u4e00-\u9fff]*",
                  re.IGNORECASE)
_MARKER = re.compile(r"\{%(.*?)%\}", re.DOTALL)
_REPOST = re.compile(r"//\s*@([^:：\s]{1,30})\s*[:：]")
# @nickname up to a space or punctuation (Weibo's convention), at most 20 characters
_MENTION = re.compile(r"@[^\s@:：,，。!！?？、;；\[\]()（）]{1,20}[:：]?")
_REPEATED_PUNCT = re.compile(r"([!?,.;~。！？，、；～…·\-=*])\1+")
_SPACES = re.compile(r"[ \t]+")
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
_EMOJI = re.compile("|".join(sorted(map(re.escape, EMOJI), key=len, reverse=True)))
_REPOST_FILLER = {"转发微博", "转发", "repost", "轉發微博", "//"}


@dataclass(frozen=True)
class Cleaned:
    text: str  # everything, normalised (matching)
    own: str  # the author's own words (scoring)
    chain: tuple[tuple[str, str], ...] = field(default=())  # reposted (user, words), nearest first

    @property
    def scored(self) -> str:
        """What sentiment is scored on: the author's words, or for a bare repost the nearest reposted words."""
        if self.own:
            return self.own
        for _, words in self.chain:
            if words:
                return words
        return ""


def to_text(value: str | bytes | None) -> str:
    """Any input as a valid str: bytes decoded as UTF-8 (bad bytes replaced), lone surrogates replaced."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """繁→简 (OpenCC t2s); ASCII-only text is returned as is."""
    if text.isascii():
        return text
    return _opencc().convert(text)


def strip_pinyin(text: str) -> str:
    """``內(nèi)容運(yùn)營(yíng)`` → ``內容運營`` (expects ASCII parentheses, i.e. after fold())."""
    if "(" not in text:
        return text
    text = _PINYIN_RUN.sub(lambda m: _PINYIN_PAREN.sub("", m.group(0)), text)
    return _PINYIN_ONE.sub(r"\1", text)


def fold(text: str) -> str:
    """Width, HTML entities, zero-width and control characters, pinyin, 繁→简 — no structure removed."""
    text = to_text(text)[:MAX_INPUT_CHARS]
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = text.translate(_TRANSLATE)
    text = strip_pinyin(text)
    if _EMOJI.search(text):
        text = _EMOJI.sub(lambda m: EMOJI[m.group(0)], text)
    return to_simplified(text)


def _tidy(text: str) -> str:
    text = _REPEATED_PUNCT.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _own_words(part: str) -> str:
    part = _MARKER.sub(" ", part)
    part = _MENTION.sub(" ", part)
    part = _tidy(part)
    return "" if part.strip(" :：") in _REPOST_FILLER else part


def clean(value: str | bytes | None) -> Cleaned:
    """Normalise one post; see the module docstring."""
    text = fold(value)
    if not text:
        return Cleaned("", "")
    if "//" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    parts = _REPOST.split(text)
    own = _own_words(parts[0])
    chain = tuple((parts[i], _own_words(parts[i + 1])) for i in range(1, len(parts) - 1, 2))
    full = _tidy(_MARKER.sub(r" \1 ", text))
    return Cleaned(full, own, chain)
