"""Near-duplicate dedup: ``sources.dedup`` against the scheme it replaced, measured in one run.

Baseline (a copy kept here): jieba words (``HMM=False``), a SimHash that loops over the 64
bits of every word's blake2b hash in Python, and a lookup through 9 bands of 7 bits (a
candidate list per band, each candidate compared in Python), distance 8. New: character
bigrams (a set, no segmentation), fingerprints for a whole batch in numpy, lookup as one
vectorised XOR + popcount over a ring of fingerprints, distance 10.

Texts: weibo2018 posts and food-delivery reviews from ``../shared/data/sentiment`` (read in
place), and clauses of them spliced into more posts so the index can hold 50,000 distinct
texts. Tables:

1. fingerprint cost per text (one at a time, and in the daemon's polls of 20);
2. lookup per mention (the index search alone) and ``link`` per mention (fingerprint +
   lookup + insert, the daemon's call) at 1k / 10k / 50k indexed mentions; queries are
   fresh texts, a fifth of them copies of indexed ones with words added;
3. quality, the figures the module docstring cites: distance between a post and its copy
   with a few words added (1,500 weibo2018 posts), and each post's nearest *other* post
   (weibo2018, the reviews, the demo's templated posts about one brand).

Times are this machine's under whatever else runs; compare the ratios.
Run: ``.venv/bin/python tests/bench/bench_dedup.py [--data DIR]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sources.base import RawItem  # noqa: E402
from sources.dedup import Deduper, fingerprints, repost_core, to_signed  # noqa: E402
from sources.normalise import normalise  # noqa: E402

T0 = datetime(2024, 6, 11, 12, tzinfo=timezone.utc)
SIZES = (1_000, 10_000, 50_000)
QUERIES = 500  # lookups timed at each size
LINKED = 100  # mentions linked at each size (polls of POLL)
POLL = 20


# -- the previous scheme, as it was ------------------------------------------------------------
_WORD = re.compile(r"[\w\u4e00-\u9fff\u3400-\u4dbf]", re.UNICODE)
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")


@functools.cache
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def old_tokens(text: str) -> list[str]:
    return [t for t in _jieba().lcut(_EMOTICON.sub(" ", text), HMM=False) if _WORD.search(t)]


def old_simhash(words) -> int:
    counts = Counter(words)
    v = [0] * 64
    for word, weight in counts.items():
        h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "big")
        for i in range(64):
            v[i] += weight if (h >> i) & 1 else -weight
    return sum(1 << i for i in range(64) if v[i] > 0)


def old_fingerprint(text: str) -> int | None:
    words = old_tokens(repost_core(text))
    return old_simhash(words) if len(words) >= 8 else None


@functools.cache
def _word_bits(word: str) -> np.ndarray:
    h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "big")
    return np.array([(h >> i) & 1 for i in range(64)], dtype=np.int64) * 2 - 1


def old_fingerprint_fast(text: str) -> int | None:
    """The same value as :func:`old_fingerprint` (checked), cached per word: only to fill indexes quickly."""
    words = old_tokens(repost_core(text))
    if len(words) < 8:
        return None
    v = sum(_word_bits(w) * c for w, c in Counter(words).items())
    return sum(1 << i for i in np.flatnonzero(v > 0).tolist())


@dataclass
class _OldEntry:
    key: tuple[str, str]
    root: tuple[str, str]
    fingerprint: int | None
    at: float


class OldIndex:
    """The band index of the previous ``Deduper`` (near-duplicate part; exact matches are unchanged)."""

    def __init__(self, max_distance: int = 8):
        self.max_distance = max_distance
        self._band_bits = 64 // (max_distance + 1)
        self._bands: list[dict[int, list[_OldEntry]]] = [{} for _ in range(max_distance + 1)]
        self.compared = 0

    def _band_keys(self, fp: int) -> list[int]:
        size, mask = self._band_bits, (1 << self._band_bits) - 1
        return [(fp >> (i * size)) & mask for i in range(self.max_distance + 1)]

    def add(self, entry: _OldEntry) -> None:
        if entry.fingerprint is not None:
            for band, band_key in zip(self._bands, self._band_keys(entry.fingerprint)):
                band.setdefault(band_key, []).append(entry)

    def find(self, key: tuple[str, str], fp: int | None, horizon: float) -> tuple[str, str] | None:
        if fp is None:
            return None
        best: _OldEntry | None = None
        best_distance = self.max_distance + 1
        for band, band_key in zip(self._bands, self._band_keys(fp)):
            for entry in band.get(band_key, ()):
                if entry.key == key or entry.at < horizon or entry.fingerprint is None:
                    continue
                self.compared += 1
                d = ((fp ^ entry.fingerprint) & 0xFFFFFFFFFFFFFFFF).bit_count()
                if d < best_distance:
                    best, best_distance = entry, d
        return best.root if best is not None else None

    def link(self, mentions) -> None:
        """The old ``link`` minus exact matching: fingerprint, find, add."""
        for m in mentions:
            fp = old_fingerprint(m.text)
            key = (m.source, m.external_id)
            root = self.find(key, fp, m.published_at.timestamp() - 3 * 86400)
            self.add(_OldEntry(key, root or key, fp, m.published_at.timestamp()))


# -- texts ----------------------------------------------------------------------------------------
def read_corpus(data: Path) -> tuple[list[str], list[str], list[str]]:
    weibo = [p[2] for p in (line.rstrip("\n").split(",", 2) for line in
                            (data / "weibo2018_train.txt").open(encoding="utf-8")) if len(p) == 3]
    waimai = [line.rstrip("\n").split(",", 1)[1] for line in
              (data / "waimai_10k.csv").open(encoding="utf-8").readlines()[1:]]
    demo = [json.loads(line)["text"] for line in (ROOT / "fixtures/demo/scenario.jsonl").open(encoding="utf-8")]
    return weibo, waimai, demo


def pool_of(texts: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` distinct texts: the corpus, then posts spliced from 2–4 of its clauses."""
    clauses = [c for t in texts for c in re.split(r"[，。！？!?；\s]+", t) if len(c) >= 4]
    out, seen = [], set()
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    while len(out) < n:
        t = "，".join(rng.choice(clauses) for _ in range(rng.randint(2, 4)))
        if t not in seen:
            seen.add(t)
            out.append(t)
    rng.shuffle(out)
    return out[:n]


PREFIXES = ["同感！", "转发让更多人看到", "#热议# ", "太真实了 ", "【转】", "我也是这样，", "气死了！", "顶一下 "]
SUFFIXES = ["！！转发让更多人看到", " 大家怎么看？", "[怒][怒]", " 求扩散", "，必须给个说法", " via 微博", " #维权#", "。真的无语"]
KINDS = ("prefix", "suffix", "both", "middle", "trunc")


def copies(t: str, rng: random.Random) -> list[str]:
    """A copy of ``t`` with a few words added, for each of KINDS."""
    k = rng.randrange(len(t) // 4, 3 * len(t) // 4 + 1)
    return [rng.choice(PREFIXES) + t, t + rng.choice(SUFFIXES), rng.choice(PREFIXES) + t + rng.choice(SUFFIXES),
            t[:k] + rng.choice(["，说真的，", "（划重点）", "，我想说"]) + t[k:], t[: int(len(t) * 0.9)] + "..."]


def mentions_of(texts: list[str], prefix: str, start: datetime):
    return [normalise(RawItem(f"{prefix}{i}", t, published_at=start + timedelta(seconds=i)), source="s", tz="UTC",
                      fetched_at=start) for i, t in enumerate(texts)]


# -- measurements --------------------------------------------------------------------------------
def per_call(fn: Callable[[], object], calls: int, repeat: int = 3) -> float:
    """Seconds per call of ``fn`` (best of ``repeat``)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / calls


def fingerprint_table(texts: list[str]) -> None:
    sample = texts[:500]
    old = per_call(lambda: [old_fingerprint(t) for t in sample], len(sample))
    single = per_call(lambda: [fingerprints([t]) for t in sample], len(sample))
    batch = per_call(lambda: [fingerprints(sample[i:i + POLL]) for i in range(0, len(sample), POLL)], len(sample))
    print(f"\nFingerprint, µs per text ({len(sample)} texts, mean {np.mean([len(t) for t in sample]):.0f} characters)")
    print(f"  {'jieba words + Python SimHash (old)':<44} {old * 1e6:>8.1f}")
    print(f"  {'bigrams + numpy, one text at a time':<44} {single * 1e6:>8.1f}   {old / single:>5.1f}x faster")
    print(f"  {f'bigrams + numpy, polls of {POLL} (link)':<44} {batch * 1e6:>8.1f}   {old / batch:>5.1f}x faster")


def lookup_table(pool: list[str], old_fps: list[int | None], new_fps: list[int | None], rng: random.Random) -> None:
    fresh = pool[max(SIZES): max(SIZES) + QUERIES]
    print(f"\nLookup and link per mention at N indexed mentions ({QUERIES} lookups, {LINKED} linked; fresh texts,"
          " every fifth a copy of an indexed one)")
    print(f"  {'N':>6} | {'old lookup µs':>13} {'cand.':>6} | {'new lookup µs':>13} {'lookups/s':>10} {'ratio':>7} |"
          f" {'old link µs':>11} {'new link µs':>11} {'ratio':>6} | copies found, fresh merged: old / new")
    horizon = T0.timestamp() - 3 * 86400
    for n in SIZES:
        queries = [copies(pool[rng.randrange(n)], rng)[i // 5 % 5] if i % 5 == 0 else fresh[i] for i in range(QUERIES)]
        q_old = [old_fingerprint_fast(t) for t in queries]
        q_new = fingerprints(queries)
        keys = [("q", str(i)) for i in range(QUERIES)]

        old = OldIndex()
        for i in range(n):
            old.add(_OldEntry(("s", str(i)), ("s", str(i)), old_fps[i], T0.timestamp()))
        found_old: list[object] = []
        old_lookup = per_call(lambda: found_old.extend(old.find(k, fp, horizon) for k, fp in zip(keys, q_old)),
                              QUERIES, repeat=1)  # slow enough to time once
        candidates = old.compared / QUERIES

        new = Deduper(max_entries=n)
        new.load(("s", str(i), f"h{i}", None if fp is None else to_signed(fp), T0) for i, fp in enumerate(new_fps[:n]))
        new_lookup = per_call(lambda: [new._nearest(fp, k, horizon) for k, fp in zip(keys, q_new) if fp is not None],
                              QUERIES)
        found_new = [fp is not None and new._nearest(fp, k, horizon) is not None for k, fp in zip(keys, q_new)]

        batches = [mentions_of(queries[i:i + POLL], f"l{i}-", T0 + timedelta(minutes=1)) for i in range(0, LINKED, POLL)]
        old_link = per_call(lambda: [old.link(b) for b in batches], LINKED, repeat=1)
        new_link = per_call(lambda: [new.link(b) for b in batches], LINKED)
        hits = [(sum(bool(f) for i, f in enumerate(found) if i % 5 == 0), sum(bool(f) for i, f in enumerate(found) if i % 5))
                for found in (found_old, found_new)]
        print(f"  {n:>6} | {old_lookup * 1e6:>13.1f} {candidates:>6.0f} | {new_lookup * 1e6:>13.1f} "
              f"{1 / new_lookup:>10,.0f} {old_lookup / new_lookup:>6.1f}x | {old_link * 1e6:>11.1f} "
              f"{new_link * 1e6:>11.1f} {old_link / new_link:>5.1f}x | {hits[0][0]}, {hits[0][1]} / {hits[1][0]}, "
              f"{hits[1][1]} (of {QUERIES // 5}, {QUERIES - QUERIES // 5})")


def quality_table(weibo: list[str], waimai: list[str], demo: list[str], rng: random.Random) -> None:
    schemes = (("old: jieba words, 8", lambda ts: [old_fingerprint_fast(t) for t in ts], 8),
               ("new: bigram set, 10", fingerprints, 10))
    posts = [t for t in weibo if 20 <= len(repost_core(t)) <= 300]
    rng.shuffle(posts)
    posts = posts[:1500]
    variants = [copies(t, rng) for t in posts]
    print(f"\nCopies with a few words added ({len(posts)} weibo2018 posts): median / p90 distance, share within reach")
    print(f"  {'':<22}" + "".join(f"{k:>17}" for k in KINDS))
    for name, fps, reach in schemes:
        base = fps(posts)
        cells = []
        for k in range(len(KINDS)):
            other = fps([v[k] for v in variants])
            d = np.array([(a ^ b).bit_count() for a, b in zip(base, other) if a is not None and b is not None])
            cells.append(f"{np.median(d):>3.0f} /{np.percentile(d, 90):>3.0f}  {np.mean(d <= reach):>6.1%}")
        print(f"  {name:<22}" + "".join(f"{c:>17}" for c in cells))
    print("\nDifferent posts: distance to the nearest other post (p5 / median), share within reach (false merges)")
    corpora = (("weibo2018", weibo), ("food reviews", waimai), ("demo (one brand)", demo))
    print(f"  {'':<22}" + "".join(f"{c:>26}" for c, _ in corpora))
    for name, fps, reach in schemes:
        cells = []
        for _, texts in corpora:
            distinct = list(dict.fromkeys("".join(t.lower().split()) for t in texts))
            a = np.array([f for f in fps(distinct) if f is not None], dtype=np.uint64)
            nearest = []
            for i in range(len(a)):
                d = np.bitwise_count(a ^ a[i])
                d[i] = 64
                nearest.append(int(d.min()))
            nearest = np.array(nearest)
            cells.append(f"{np.percentile(nearest, 5):>3.0f} /{np.median(nearest):>3.0f}  {np.mean(nearest <= reach):>6.1%}"
                         f" of {len(a):>5}")
        print(f"  {name:<22}" + "".join(f"{c:>26}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sentiment")
    args = parser.parse_args()
    if not (args.data / "weibo2018_train.txt").exists():
        print(f"bench_dedup: {args.data} not found (expected ../shared/data/sentiment beside the project); skipped")
        return 0
    started = time.perf_counter()
    rng = random.Random(11)
    weibo, waimai, demo = read_corpus(args.data)
    pool = pool_of(weibo + waimai, max(SIZES) + QUERIES, rng)
    check = pool[:200]
    assert [old_fingerprint_fast(t) for t in check] == [old_fingerprint(t) for t in check]
    fingerprint_table(pool)
    old_fps = [old_fingerprint_fast(t) for t in pool[:max(SIZES)]]
    new_fps = fingerprints(pool[:max(SIZES)])
    lookup_table(pool, old_fps, new_fps, rng)
    quality_table(weibo, waimai, demo, rng)
    print(f"\n({time.perf_counter() - started:.0f} s) Reproduce: .venv/bin/python tests/bench/bench_dedup.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
