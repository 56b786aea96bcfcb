"""What people are angry about (``nlp.themes``): cost against plain segmentation, measured in one run.

Incident: 2,000 negative food-delivery reviews (waimai_10k, label 0). Baseline: 20,000
distinct texts — the positive reviews, weibo2018 posts, then posts spliced from their
clauses. Reference: ``nlp.segment.cut`` over the incident and the baseline — what
counting both sides by segmenting them would cost at the least. Rows:

1. ``themes(incident, baseline)`` (segments the incident, scans the baseline);
2. ``themes(incident, [])``-like floor: segmenting the incident alone;

and the themes it finds (negative vs positive reviews, a sanity check on real text).
Times are this machine's under whatever else runs; compare the ratios.
Run: ``.venv/bin/python tests/bench/bench_themes.py [--data DIR]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nlp.segment import cut  # noqa: E402
from nlp.themes import format_themes, themes  # noqa: E402

INCIDENT, BASELINE = 2_000, 20_000


def read(data: Path) -> tuple[list[str], list[str], list[str]]:
    rows = [line.rstrip("\n").split(",", 1) for line in
            (data / "waimai_10k.csv").open(encoding="utf-8").readlines()[1:]]
    negative = [t for label, t in rows if label == "0"]
    positive = [t for label, t in rows if label == "1"]
    weibo = [p[2] for p in (line.rstrip("\n").split(",", 2) for line in
                            (data / "weibo2018_train.txt").open(encoding="utf-8")) if len(p) == 3]
    return negative, positive, weibo


def distinct(texts: list[str], n: int, rng: random.Random) -> list[str]:
    """``n`` distinct texts: ``texts``, then posts spliced from 2–4 of their clauses."""
    clauses = [c for t in texts for c in re.split(r"[，。！？!?；\s]+", t) if len(c) >= 4]
    out, seen = [], set()
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    while len(out) < n:
        t = "，".join(rng.sample(clauses, rng.randint(2, 4)))
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out[:n]


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sentiment")
    args = parser.parse_args(argv)
    if not (args.data / "waimai_10k.csv").exists():
        print(f"bench_themes: {args.data} not found (expected ../shared/data/sentiment beside the project); skipped")
        return 0
    rng = random.Random(13)
    negative, positive, weibo = read(args.data)
    incident = negative[:INCIDENT]
    baseline = distinct(positive + weibo, BASELINE, rng)
    rng.shuffle(baseline)
    cut("预热")  # the dictionary loads once per process; not part of any row

    reference = best_of(lambda: [cut(t) for t in incident + baseline], 1)
    rows = [
        ("segmenting incident + baseline (reference)", reference),
        (f"themes({INCIDENT:,} incident, {BASELINE:,} baseline)", best_of(lambda: themes(incident, baseline))),
        ("segmenting the incident alone", best_of(lambda: [cut(t) for t in incident])),
    ]
    print(f"{'':<52}{'seconds':>9}{'× reference':>13}")
    for name, seconds in rows:
        print(f"{name:<52}{seconds:>9.3f}{seconds / reference:>13.2f}")
    found = themes(incident, baseline, limit=10)
    print("\nnegative reviews vs the baseline:", format_themes(found, limit=10))
    print("negative vs positive reviews:     ", format_themes(themes(negative, positive, limit=10), limit=10))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
