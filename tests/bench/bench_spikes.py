"""Spike detection on real mention counts: negative_spike vs a plain z-score vs an ElastAlert-style ratio.

Data: ``../shared/data/spikes/`` (NAB Twitter mention counts per 5 minutes, labelled anomaly
windows; read in place, never copied). Scoring, as ``../shared/data/README.md`` says: a page
inside a labelled window hits it; every other page, after a one-hour refractory period (one
burst counts once), is a false page. Reported per series: windows hit and false pages per
series-day.

All three detectors page through the same hysteresis (a page when the condition starts, quiet
until it has been false for 30 minutes) and the same one-day warm-up, so only the statistics
differ:

* ``negative_spike`` — the project's rule with its default settings, fed through
  :func:`monitor.app.replay.replay_counts` (the code path of ``monitor replay --counts``).
* plain z-score — ``(x - mean) / std`` over the trailing day of buckets, page at ``z >= 3``.
* ElastAlert-style spike — the count of the last hour vs the hour before, page at
  ``cur > 3 * ref`` with ``cur >= 10`` (ElastAlert's ``spike`` rule: ``timeframe``,
  ``spike_height``, ``threshold_cur``).

Each baseline is shown with those textbook settings and with its best setting from a small grid
on the same data (most windows hit, then fewest false pages), so the comparison does not rest on
a strawman. A last table checks the time-of-day part of the baseline: synthetic counts with a
strong daily rhythm and injected bursts (seeded), with and without it.

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
from typing import Callable, Sequence

from alerts.rules.common import Hysteresis
from alerts.rules.negative_spike import NegativeSpikeConfig
from monitor.core.severity import Severity
from monitor.app.replay import load_counts, load_windows, replay_counts, score_pages

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "spikes"
SERIES = ("Twitter_volume_AAPL.csv", "Twitter_volume_GOOG.csv", "Twitter_volume_IBM.csv")
BUCKET = timedelta(minutes=5)
PER_DAY = 288
RESOLVE_AFTER = timedelta(minutes=30)

Counts = Sequence[tuple[datetime, int]]
Detector = Callable[[Counts], list[datetime]]


# -- detectors -----------------------------------------------------------------------------
def with_hysteresis(counts: Counts, conditions: Sequence[bool]) -> list[datetime]:
    """Page times for a per-bucket condition, evaluated at each bucket's end."""
    state, pages = Hysteresis(RESOLVE_AFTER), []
    for (at, _), condition in zip(counts, conditions):
        now = at + BUCKET
        change = state.update(now, Severity.IV if condition else None)
        if change is not None and change[0] == "firing":
            pages.append(now)
    return pages


def zscore(window: int = PER_DAY, threshold: float = 3.0) -> Detector:
    def detect(counts: Counts) -> list[datetime]:
        past: deque[int] = deque(maxlen=window)
        s = s2 = 0.0
        conditions = []
        for i, (_, x) in enumerate(counts):
            fire = False
            if len(past) == window and i >= PER_DAY:
                mean = s / window
                std = math.sqrt(max(s2 / window - mean * mean, 1e-9))
                fire = (x - mean) / std >= threshold
            if len(past) == window:
                old = past[0]
                s, s2 = s - old, s2 - old * old
            past.append(x)
            s, s2 = s + x, s2 + x * x
            conditions.append(fire)
        return with_hysteresis(counts, conditions)
    return detect


def elastalert(timeframe: int = 12, spike_height: float = 3.0, threshold_cur: int = 10) -> Detector:
    def detect(counts: Counts) -> list[datetime]:
        xs = [x for _, x in counts]
        prefix = [0]
        for x in xs:
            prefix.append(prefix[-1] + x)
        conditions = []
        for i in range(len(xs)):
            fire = False
            if i >= max(2 * timeframe - 1, PER_DAY):
                cur = prefix[i + 1] - prefix[i + 1 - timeframe]
                ref = prefix[i + 1 - timeframe] - prefix[i + 1 - 2 * timeframe]
                fire = cur >= threshold_cur and cur > spike_height * ref
            conditions.append(fire)
        return with_hysteresis(counts, conditions)
    return detect


def negative_spike(**settings) -> Detector:
    config = NegativeSpikeConfig(name="负面激增", type="negative_spike", warmup="1d", **settings)

    def detect(counts: Counts) -> list[datetime]:
        return [p.at for p in replay_counts(counts, config) if p.kind in ("firing", "reopened")]
    return detect


# -- scoring -------------------------------------------------------------------------------
def evaluate(detector: Detector, data: dict) -> dict:
    """Per series and in total: windows hit, windows, false pages, series-days."""
    out, total = {}, [0, 0, 0, 0.0]
    for name, (counts, windows) in data.items():
        score = score_pages(detector(counts), windows)
        days = (counts[-1][0] - counts[0][0]) / timedelta(days=1)
        out[name] = (score.hit, score.windows, score.false_pages, days)
        for k, v in enumerate(out[name]):
            total[k] += v
    out["total"] = tuple(total)
    return out


def fmt(result: dict) -> str:
    cells = []
    for name, (hit, windows, false, days) in result.items():
        short = name.replace("Twitter_volume_", "").replace(".csv", "")
        cells.append(f"{short} {hit}/{windows} {false / days:.2f}")
    return " | ".join(cells)


def best(factory: Callable[..., Detector], grid: list[dict], data: dict) -> tuple[dict, dict]:
    scored = [(evaluate(factory(**g), data), g) for g in grid]
    return max(scored, key=lambda r: (r[0]["total"][0], -r[0]["total"][2]))


# -- synthetic rhythm ------------------------------------------------------------------------
def rhythm_series(seed: int, days: int = 28, factor: float = 6.0, bursts: int = 20):
    """Over-dispersed (gamma-Poisson) counts with a strong daily rhythm (1 per bucket at night,
    30 at the evening peak, a fast morning ramp) and ``bursts`` injected 15-minute bursts of
    ``factor`` times the level after the first week. Returns (counts, one-hour window per burst)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with the NAB series and labels.json")
    args = parser.parse_args(argv)
    if not (args.data / "labels.json").exists():
        print(f"bench_spikes: skipped, no data at {args.data}")
        return 0
    started = time.perf_counter()
    data = {name: (load_counts(args.data / name), load_windows(args.data / "labels.json", name)) for name in SERIES}

    rows = [("negative_spike (defaults, 1d warm-up)", evaluate(negative_spike(), data))]
    rows.append(("plain z-score (1 day, z>=3)", evaluate(zscore(), data)))
    z_best, z_grid = best(zscore, [dict(window=w, threshold=t) for w in (12, 288, 2016) for t in (3, 4, 5, 6, 8)], data)
    rows.append((f"plain z-score best ({z_grid['window'] // 12}h, z>={z_grid['threshold']})", z_best))
    rows.append(("ElastAlert spike (1h, x3, cur>=10)", evaluate(elastalert(), data)))
    e_best, e_grid = best(elastalert, [dict(timeframe=t, spike_height=h, threshold_cur=10)
                                       for t in (1, 3, 12, 36) for h in (2, 3, 5, 8)], data)
    rows.append((f"ElastAlert best ({e_grid['timeframe'] * 5}m, x{e_grid['spike_height']})", e_best))

    print("NAB Twitter mention counts: windows hit / windows and false pages per series-day (1h refractory)")
    width = max(len(r[0]) for r in rows)
    for label, result in rows:
        print(f"  {label:<{width}}  {fmt(result)}")
    ours = rows[0][1]["total"][2]
    for label, result in rows[1:]:
        theirs = result["total"][2]
        if theirs:
            print(f"  false pages of negative_spike / {label}: {ours / theirs:.2f}")

    print("synthetic strong daily rhythm with injected 15-minute x6 bursts (3 seeded series x 28 days)")
    synthetic = {f"seed{seed}": rhythm_series(seed) for seed in range(3)}
    for label, detector in (("negative_spike (defaults)", negative_spike()),
                            ("negative_spike seasonal_days=0", negative_spike(seasonal_days=0)),
                            ("plain z-score best", zscore(**z_grid)), ("ElastAlert best", elastalert(**e_grid))):
        hit, windows, false, days = evaluate(detector, synthetic)["total"]
        print(f"  {label:<{width}}  bursts hit {hit}/{windows}, false pages per day {false / days:.3f}")
    print(f"bench_spikes: {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
