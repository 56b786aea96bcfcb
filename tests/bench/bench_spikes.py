"""Spike detection: negative_spike (new and old defaults, count and heat) vs simple detectors, on real
loud series and synthetic quiet ones, split into the series the defaults were tuned on and held-out ones.

Data:

* **NAB** — ``../shared/data/spikes/`` (Twitter mentions of AAPL, GOOG, IBM per 5 minutes with NAB's
  labelled anomaly windows; read in place, never copied). Loud topics (median 47, 16, 3 per bucket).
* **quiet** — :mod:`tests.synthetic_series`: a median of 0, 1 or 2 negatives per 5 minutes with a
  daily and weekly rhythm, drift, chatter, and six injected crises per 21 days (eruption, clumps,
  sustained rise) of known start, size and length; window = the crisis plus one hour.
* **loud rhythm** — a strong daily rhythm (1 to 30 per bucket) with 15-minute ×6 bursts: how fast a
  loud topic's eruption pages.

Split: the defaults were chosen on NAB AAPL, GOOG, IBM and quiet seeds 0–3 (×3 medians); quiet seeds
4–7 were held out (see the README for the order of events). Scoring, as ``../shared/data/README.md``
says: a page inside a window hits it; every other page, after a one-hour refractory period, is a
false page. Time to first page: from the crisis start (synthetic series only: NAB windows start
well before their anomaly).

negative_spike is driven as ``monitor replay --counts`` drives it (each bucket's count mid-bucket,
evaluated at the bucket's end, one-day warm-up); a page is the start of an episode (an incident's
firing or reopened notice; escalations are not pages). The simple detectors page through the same
hysteresis (30 minutes) and warm-up. Their "best" settings are the best of a small grid on the
tuning split (most windows hit, then fewest false pages), then reported on both splits.

Run: ``.venv/bin/python tests/bench/bench_spikes.py [--data DIR]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from alerts.rules.common import Hysteresis  # noqa: E402
from alerts.rules.negative_spike import NegativeSpikeConfig, NegativeSpikeRule  # noqa: E402
from monitor.app.replay import load_counts, load_windows, score_pages  # noqa: E402
from monitor.core.severity import Severity  # noqa: E402
from tests.synthetic_series import heats, quiet_series  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "spikes"
SERIES = ("Twitter_volume_AAPL.csv", "Twitter_volume_GOOG.csv", "Twitter_volume_IBM.csv")
TUNING_SEEDS, HELD_OUT_SEEDS, MEDIANS = range(0, 4), range(4, 8), (0, 1, 2)
BUCKET = timedelta(minutes=5)
PER_DAY = 288
RESOLVE_AFTER = timedelta(minutes=30)
# negative_spike's defaults before scales (one 5-minute scale with an absolute floor), for comparison
OLD_DEFAULTS = dict(scales=["5m"], z_threshold=6.0, confirm=2, z_immediate=20.0, spike_ratio=3.0, min_current=10,
                    seasonal_days=3, seasonal_weight=0.5, reference="6h", min_baseline=0.05)

Counts = Sequence[tuple[datetime, float]]
Detector = Callable[[Counts], list[datetime]]


# -- detectors -----------------------------------------------------------------------------
def negative_spike(**settings) -> Detector:
    config = NegativeSpikeConfig(name="负面激增", type="negative_spike", warmup="1d", **settings)
    heat = config.measure == "heat"

    def detect(counts: Counts) -> list[datetime]:
        rule = NegativeSpikeRule(config, "bench", counts[0][0])
        pages, firing = [], False
        for at, value in counts:
            matches = (rule.add_counts(at + BUCKET / 2, 0, now=at + BUCKET, heat=value) if heat
                       else rule.add_counts(at + BUCKET / 2, int(value), now=at + BUCKET))
            for m in matches:
                if m.kind == "firing" and not firing:
                    pages.append(m.at)
                firing = m.kind == "firing"
        return pages
    return detect


def with_hysteresis(counts: Counts, conditions: Sequence[bool]) -> list[datetime]:
    """Page times for a per-bucket condition, evaluated at each bucket's end."""
    state, pages = Hysteresis(RESOLVE_AFTER), []
    for (at, _), condition in zip(counts, conditions):
        now = at + BUCKET
        change = state.update(now, Severity.IV if condition else None)
        if change is not None and change[0] == "firing":
            pages.append(now)
    return pages


def zscore(window: int = PER_DAY, threshold: float = 3.0, confirm: int = 1) -> Detector:
    """``(x - mean) / std`` over the trailing ``window`` buckets, ``confirm`` buckets in a row."""
    def detect(counts: Counts) -> list[datetime]:
        past: deque[float] = deque(maxlen=window)
        s = s2 = 0.0
        conditions, run = [], 0
        for i, (_, x) in enumerate(counts):
            fire = False
            if len(past) == window and i >= PER_DAY:
                mean = s / window
                fire = (x - mean) / math.sqrt(max(s2 / window - mean * mean, 1e-9)) >= threshold
            if len(past) == window:
                s, s2 = s - past[0], s2 - past[0] ** 2
            past.append(x)
            s, s2 = s + x, s2 + x * x
            run = run + 1 if fire else 0
            conditions.append(run >= confirm)
        return with_hysteresis(counts, conditions)
    return detect


def elastalert(timeframe: int = 12, spike_height: float = 3.0, threshold_cur: int = 10) -> Detector:
    """ElastAlert's ``spike`` rule: the last ``timeframe`` buckets vs the ones before."""
    def detect(counts: Counts) -> list[datetime]:
        prefix = [0.0]
        for _, x in counts:
            prefix.append(prefix[-1] + x)
        conditions = []
        for i in range(len(counts)):
            fire = False
            if i >= max(2 * timeframe - 1, PER_DAY):
                cur = prefix[i + 1] - prefix[i + 1 - timeframe]
                ref = prefix[i + 1 - timeframe] - prefix[i + 1 - 2 * timeframe]
                fire = cur >= threshold_cur and cur > spike_height * ref
            conditions.append(fire)
        return with_hysteresis(counts, conditions)
    return detect


# -- data and scoring --------------------------------------------------------------------------
def rhythm_series(seed: int, days: int = 28, factor: float = 6.0, bursts: int = 20):
    """Over-dispersed counts with a strong daily rhythm (1 per bucket at night, 30 at the evening
    peak) and ``bursts`` injected 15-minute bursts of ``factor`` times the level after the first week."""
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    starts = set(rng.sample(range(8 * PER_DAY, days * PER_DAY - 12), bursts))
    counts, windows, boost = [], [], 0
    for i in range(days * PER_DAY):
        at = t0 + i * BUCKET
        if i in starts:
            boost = 3
            windows.append((at, at + timedelta(hours=1)))
        hour = (i % PER_DAY) / 12
        level = 1 + 29 * math.sin(math.pi * (hour - 7) / 16) ** 2 if 7 <= hour <= 23 else 1.0
        lam = level * rng.gammavariate(1 / 0.3, 0.3) * (factor if boost > 0 else 1)
        boost -= 1
        counts.append((at, _poisson(rng, lam)))
    return counts, windows


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def score(detector: Detector, data: dict, hits: dict | None = None) -> tuple[int, int, int, float, list[float]]:
    """(windows hit, windows, false pages, series-days, minutes from each hit window's start); with
    ``hits``, each window's (series, index) -> whether it was hit."""
    hit = windows = false = 0
    days, delays = 0.0, []
    for name, (counts, wins) in data.items():
        pages = detector(counts)
        s = score_pages(pages, wins)
        hit, windows, false = hit + s.hit, windows + s.windows, false + s.false_pages
        days += (counts[-1][0] - counts[0][0]) / timedelta(days=1)
        delays += [d / timedelta(minutes=1) for d in s.delays]
        if hits is not None:
            hits.update({(name, k): any(a <= p <= b for p in pages) for k, (a, b) in enumerate(wins)})
    return hit, windows, false, days, delays


def cell(result, delay: bool = True) -> str:
    hit, windows, false, days, delays = result
    text = f"{hit}/{windows} {false / days:.2f}"
    if delay:
        text += f" {median(delays):.0f}m" if delays else "   -"
    return text


def best(factory: Callable[..., Detector], grid: list[dict], data: dict, cap: float = 0.5) -> dict:
    """The setting with most windows hit at no more than ``cap`` false pages per series-day (then
    fewest false pages) on ``data``; settings over the cap rank after all others."""
    def rank(g: dict):
        hit, _, false, days, _ = score(factory(**g), data)
        return (false / days <= cap, hit, -false / days)
    return max(grid, key=rank)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with the NAB series and labels.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    nab = {}
    if (args.data / "labels.json").exists():
        nab = {n: (load_counts(args.data / n), load_windows(args.data / "labels.json", n)) for n in SERIES}
    else:
        print(f"bench_spikes: no NAB data at {args.data}; synthetic series only")
    quiet = {split: [quiet_series(seed, m) for m in MEDIANS for seed in seeds]
             for split, seeds in (("tuning", TUNING_SEEDS), ("held out", HELD_OUT_SEEDS))}
    counts = {split: {s.name: (s.counts, s.windows) for s in series} for split, series in quiet.items()}
    heat = {split: {s.name: (heats(s), s.windows) for s in series} for split, series in quiet.items()}
    tuning = {**nab, **counts["tuning"]}

    z_grid = best(zscore, [dict(window=w, threshold=t, confirm=c) for w in (12, 288) for t in (4, 6, 8)
                           for c in (1, 2)], tuning)
    e_grid = best(elastalert, [dict(timeframe=t, spike_height=h) for t in (3, 12, 36) for h in (3, 5)], tuning)
    detectors = [
        ("negative_spike, new defaults", negative_spike(), counts),
        ("negative_spike, measure: heat", negative_spike(measure="heat"), heat),
        ("negative_spike, old defaults", negative_spike(**OLD_DEFAULTS), counts),
        ("plain z-score, 1 day, z >= 3", zscore(), counts),
        (f"plain z-score, best ({z_grid['window'] * 5}m, z >= {z_grid['threshold']:g} x{z_grid['confirm']})",
         zscore(**z_grid), counts),
        ("ElastAlert spike, 1h vs 1h before, x3", elastalert(), counts),
        (f"ElastAlert spike, best ({e_grid['timeframe'] * 5}m, x{e_grid['spike_height']:g})",
         elastalert(**e_grid), counts),
    ]
    print("windows hit, false pages per series-day, median minutes from crisis start to first page")
    print(f"{'detector':<44} {'NAB (tuning)':>13} {'quiet 0-3 (tuning)':>20} {'quiet 4-7 (held out)':>21}")
    shapes: dict = {}
    for label, detector, data in detectors:
        real = cell(score(detector, nab), delay=False) if nab and data is counts else "-"
        hits = shapes if not shapes else None
        print(f"{label:<44} {real:>13} {cell(score(detector, data['tuning'], hits)):>20} "
              f"{cell(score(detector, data['held out'], hits)):>21}")
    by_shape = {}
    for s in quiet["tuning"] + quiet["held out"]:
        for k, burst in enumerate(s.bursts):
            by_shape.setdefault(burst.shape, []).append(shapes[s.name, k])
    print("  new defaults by crisis shape (both splits): "
          + ", ".join(f"{shape} {sum(h)}/{len(h)}" for shape, h in by_shape.items()))

    loud = {f"seed{seed}": rhythm_series(seed) for seed in range(3)}
    print("loud daily rhythm, 15-minute x6 bursts (3 series x 28 days): bursts hit, false pages/day, delay")
    for label, detector in (("negative_spike, new defaults", negative_spike()),
                            ("negative_spike, old defaults", negative_spike(**OLD_DEFAULTS))):
        print(f"  {label:<42} {cell(score(detector, loud))}")
    print(f"bench_spikes: {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
