"""Cross-source dedup: copies and reposts become one story with a repost count.

One viral post copied to ten platforms and reposted a thousand times is one
story, not a thousand independent complaints — yet every copy is still stored
and still counts toward volume. :class:`Deduper` links each new mention to the
root of its story (``Mention.duplicate_of`` → ``story_id`` when stored; the root's
``repost_count`` grows):

- **exact** — the same normalised text (``content_hash``) from any source;
- **near** — a SimHash fingerprint (64 bits over jieba tokens, weighted by
  count) within ``max_distance`` bits of one already seen. Before hashing, a
  Weibo repost chain ``"说两句 //@甲:说一句 //@乙:原文"`` is reduced to its
  last segment — the text that was reposted — so every repost of a post,
  whatever it adds, lands on the original's story.

Short generic texts (fewer than ``min_chars`` characters, or fewer than
``min_tokens`` tokens for SimHash) are never merged: a hundred people writing
"太差了" are a hundred voices. Candidates are looked up by splitting the
fingerprint into ``max_distance + 1`` bands (two fingerprints within the distance
agree on at least one band), within ``window`` of publication time. The default
distance (8 of 64 bits) merges a post with a few words added (measured: 4–8) and
keeps apart different posts on the same subject (measured: 18 and more).

The index lives in memory, bounded by ``max_entries``; after a restart it is
loaded from the stored mentions of the last ``window`` (:meth:`Deduper.load`).
Pure logic: no clock, no database.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import Counter, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from monitor.core.domain import Mention

BITS = 64
_MASK = (1 << BITS) - 1
_CHAIN = re.compile(r"//\s*@[^:：\s]{1,30}\s*[:：]")
_REPOST_FILLER = re.compile(r"^(转发微博|轉發微博|repost|转发)\s*$", re.I)
_WORD = re.compile(r"[\w\u4e00-\u9fff\u3400-\u4dbf]", re.UNICODE)
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")  # [怒] [哈哈]: emotion, not content


def repost_core(text: str) -> str:
    """The reposted original inside a repost chain (the part after the last ``//@name:``), else ``text``."""
    parts = _CHAIN.split(text)
    if len(parts) > 1:
        core = parts[-1].strip()
        if core and not _REPOST_FILLER.match(core):
            return core
    return text


def tokens(text: str) -> list[str]:
    """jieba tokens of ``text`` that carry content (no punctuation, spaces or emoticons)."""
    return [t for t in _jieba().lcut(_EMOTICON.sub(" ", text), HMM=False) if _WORD.search(t)]


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict …" on every start
    return jieba


def simhash(words: Iterable[str]) -> int:
    """64-bit SimHash of ``words`` (each weighted by its count); 0 for no words."""
    counts = Counter(words)
    v = [0] * BITS
    for word, weight in counts.items():
        h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "big")
        for i in range(BITS):
            v[i] += weight if (h >> i) & 1 else -weight
    return sum(1 << i for i in range(BITS) if v[i] > 0)


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & _MASK).bit_count()


def to_signed(value: int) -> int:
    """Unsigned 64-bit → signed (fits a BIGINT column)."""
    return value - (1 << BITS) if value >= 1 << (BITS - 1) else value


def to_unsigned(value: int) -> int:
    return value & _MASK


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _seconds(value: datetime) -> float:
    """Seconds since 1970 of ``value`` (naive: UTC), for window arithmetic that cannot overflow.

    ``published_at - window`` raises OverflowError near year 1; a float never does. A
    value that is no time at all is -inf, the oldest: never a reason to raise.
    """
    try:
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH).total_seconds()
    except (AttributeError, TypeError, ValueError, OverflowError):
        return float("-inf")


@dataclass
class _Entry:
    key: tuple[str, str]  # the mention
    root: tuple[str, str]  # the root of its story
    content_hash: str
    fingerprint: int | None
    at: float  # published_at in seconds (see _seconds)


class Deduper:
    def __init__(self, *, window: timedelta = timedelta(days=3), max_distance: int = 8, min_chars: int = 10,
                 min_tokens: int = 8, max_entries: int = 50_000):
        if not 0 <= max_distance < 16:
            raise ValueError("max_distance must be in 0..15")
        self.window = window
        self.max_distance = max_distance
        self.min_chars = min_chars
        self.min_tokens = min_tokens
        self.max_entries = max_entries
        self._band_bits = BITS // (max_distance + 1)
        self._bands: list[dict[int, list[_Entry]]] = [{} for _ in range(max_distance + 1)]
        self._by_hash: dict[str, _Entry] = {}
        self._entries: deque[_Entry] = deque()

    # -- fingerprints -----------------------------------------------------------------
    def fingerprint(self, text: str) -> int | None:
        """SimHash of the repost core of ``text``; None when it is too short to compare."""
        words = tokens(repost_core(text))
        if len(words) < self.min_tokens:
            return None
        return simhash(words)

    def _band_keys(self, fp: int) -> list[int]:
        size, mask = self._band_bits, (1 << self._band_bits) - 1
        return [(fp >> (i * size)) & mask for i in range(self.max_distance + 1)]

    # -- linking ------------------------------------------------------------------------
    def link(self, mentions: Sequence[Mention]) -> list[Mention]:
        """``mentions`` with ``simhash`` set and, for copies, ``duplicate_of`` and ``dup_kind``.

        Earlier mentions of the same batch count: a batch may hold a post and its reposts.
        """
        out: list[Mention] = []
        for m in mentions:
            fp = self.fingerprint(m.text)
            key = (m.source, m.external_id)
            root, kind = self._find(m, key, fp)
            linked = replace(m, simhash=None if fp is None else to_signed(fp))
            if root is not None:
                linked = replace(linked, duplicate_of=root, dup_kind=kind)
            self._add(_Entry(key, root or key, m.content_hash, fp, _seconds(m.published_at)))
            out.append(linked)
        return out

    def _find(self, m: Mention, key: tuple[str, str], fp: int | None) -> tuple[tuple[str, str] | None, str | None]:
        horizon = _seconds(m.published_at) - self.window.total_seconds()
        if len(m.text) >= self.min_chars:
            entry = self._by_hash.get(m.content_hash)
            if entry is not None and entry.key != key and entry.at >= horizon:
                return entry.root, "exact"
        if fp is None:
            return None, None
        best: _Entry | None = None
        best_distance = self.max_distance + 1
        for band, band_key in zip(self._bands, self._band_keys(fp)):
            for entry in band.get(band_key, ()):
                if entry.key == key or entry.at < horizon or entry.fingerprint is None:
                    continue
                d = hamming(fp, entry.fingerprint)
                if d < best_distance:
                    best, best_distance = entry, d
        return (best.root, "near") if best is not None else (None, None)

    def _add(self, entry: _Entry) -> None:
        self._entries.append(entry)
        if len(self._entries) == 1 or entry.content_hash not in self._by_hash:
            self._by_hash[entry.content_hash] = entry
        if entry.fingerprint is not None:
            for band, band_key in zip(self._bands, self._band_keys(entry.fingerprint)):
                band.setdefault(band_key, []).append(entry)
        while len(self._entries) > self.max_entries:
            self._forget(self._entries.popleft())

    def _forget(self, entry: _Entry) -> None:
        if self._by_hash.get(entry.content_hash) is entry:
            del self._by_hash[entry.content_hash]
        if entry.fingerprint is not None:
            for band, band_key in zip(self._bands, self._band_keys(entry.fingerprint)):
                bucket = band.get(band_key)
                if bucket is not None:
                    try:
                        bucket.remove(entry)
                    except ValueError:
                        pass
                    if not bucket:
                        del band[band_key]

    # -- restart --------------------------------------------------------------------------
    def load(self, rows: Iterable[tuple[str, str, str, int | None, datetime]]) -> int:
        """Index stored mentions ``(source, external_id, content_hash, simhash, published_at)``, oldest first.

        Stored duplicates point at their own key here; storage resolves any mention
        to its story root (``story_id``), so a chain still ends at the root.
        """
        n = 0
        for source, external_id, content_hash, fp, published_at in rows:
            key = (source, external_id)
            self._add(_Entry(key, key, content_hash, None if fp is None else to_unsigned(fp), _seconds(published_at)))
            n += 1
        return n

    def __len__(self) -> int:
        return len(self._entries)

