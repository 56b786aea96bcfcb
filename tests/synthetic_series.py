"""Synthetic quiet mention series with injected crises of known size and length (seeded).

Most brands are small: a median of 0–2 negative mentions per 5 minutes. The crisis of a quiet
brand does not start with one loud bucket but with complaints that trickle and clump for hours.
:func:`quiet_series` builds such a topic:

* **background** — Poisson counts whose rate follows a daily rhythm (quiet nights, a lunch and an
  evening peak, Asia/Shanghai), a weekly one (weekends at 70 %), a slowly drifting level
  (log-AR(1), hourly steps) and per-bucket gamma noise (over-dispersion), scaled so that the median
  count per 5 minutes is ``median`` (0, 1 or 2);
* **chatter** — unlabelled small clumps (a thread of 3–12 replies over 5–15 minutes, about two
  a day): what an ordinary day of a small topic looks like, and what must not page;
* **crises** — ``bursts`` injected after a one-week run-in, at least 36 hours apart, each labelled
  with the window ``[start, end + 1 h]``. Three shapes, in turn:

  - ``eruption``: 15–30 minutes, max(30, 6–10 × the usual) extra negatives, most in the first
    minutes (a loud post goes viral);
  - ``clumps``: 2–6 hours in which 3–6 buckets get clumps of 10–36 (scaled up on a busier topic to
    1.5 × the usual of the span) — the shape the old defaults missed on a held-out real series;
  - ``sustained``: 2–6 hours with max(40, 3–5 × the usual) extra spread evenly (4–6 times the usual
    rate in all, no loud bucket: complaints pile up).

:func:`heats` gives each bucket's summed 舆情热度 (:func:`monitor.core.heat.heat` of a random author and
engagement per negative), the crises' mentions drawn like the background's, so heat is tested as
a measure without an edge the data does not give it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from monitor.core.heat import heat

BUCKET = timedelta(minutes=5)
PER_DAY = 288
T0 = datetime(2024, 3, 3, 16, 0, tzinfo=timezone.utc)  # a Monday, 00:00 in Asia/Shanghai
SHAPES = ("eruption", "clumps", "sustained")
# mean rate per 5 minutes (day average) that gives a median of 0, 1, 2 with this rhythm and noise
_MEAN_FOR_MEDIAN = {0: 0.35, 1: 1.5, 2: 2.7}


@dataclass(frozen=True)
class Burst:
    shape: str
    start: datetime
    length: timedelta
    size: int  # extra negatives injected

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.start, self.start + self.length + timedelta(hours=1)


@dataclass(frozen=True)
class Series:
    name: str
    counts: list[tuple[datetime, int]]  # (bucket start, negatives)
    bursts: list[Burst]
    seed: int

    @property
    def windows(self) -> list[tuple[datetime, datetime]]:
        return [b.window for b in self.bursts]


def rhythm(bucket_of_day: int) -> float:
    """Relative rate by time of day (mean 1 over the day): 0.15 at 04:00, peaks at 12:30 and 21:00."""
    hour = bucket_of_day / 12
    night = 0.15
    lunch = 1.3 * math.exp(-((hour - 12.5) / 1.5) ** 2)
    evening = 2.0 * math.exp(-((hour - 21) / 2.0) ** 2)
    day = 0.9 / (1 + math.exp(-(hour - 8) * 1.5)) * (1 - 1 / (1 + math.exp(-(hour - 23.5) * 2)))
    return (night + lunch + evening + day) / 1.01


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _mention_heat(rng: random.Random) -> float:
    """Most authors are small and most posts go unnoticed; now and then a big account or a viral post."""
    followers = int(10 ** rng.gauss(2.3, 1.0)) if rng.random() < 0.97 else int(10 ** rng.uniform(5, 7))
    engagement = int(10 ** rng.gauss(0.3, 0.8)) if rng.random() < 0.95 else int(10 ** rng.uniform(2, 4))
    return heat(followers, engagement // 3, engagement // 3, engagement)


def quiet_series(seed: int, median: int = 0, days: int = 21, bursts: int = 6) -> Series:
    rng = random.Random(seed * 1009 + median)
    n = days * PER_DAY
    mean = _MEAN_FOR_MEDIAN[median]
    # slow drift of the level: log-AR(1) with hourly steps
    drift, level = [], 0.0
    for _ in range(days * 24 + 1):
        level = 0.9 * level + rng.gauss(0, 0.12)
        drift.append(math.exp(level))
    rates = []
    for i in range(n):
        weekday = (i // PER_DAY) % 7
        week = 0.7 if weekday >= 5 else 1.0
        rates.append(mean * rhythm(i % PER_DAY) * week * drift[i // 12] * rng.gammavariate(3.0, 1 / 3.0))
    extra = [0] * n
    for _ in range(days * 2):  # chatter: ~2 small threads a day
        i, size, spread = rng.randrange(n), rng.randint(3, 12), rng.randint(1, 3)
        for _ in range(size):
            extra[min(n - 1, i + rng.randrange(spread))] += 1

    planted: list[Burst] = []
    for k, i in enumerate(_burst_starts(rng, n, bursts)):
        shape = SHAPES[(k + seed) % len(SHAPES)]
        length = {"eruption": rng.randint(3, 6), "clumps": rng.randint(24, 72), "sustained": rng.randint(24, 72)}[shape]
        usual = sum(rates[i:i + length])
        if shape == "eruption":  # front-loaded: most of it in the first minutes
            size = round(max(30, rng.uniform(6, 10) * usual))
            for _ in range(size):
                extra[i + min(length - 1, int(rng.expovariate(1.5 / length)))] += 1
        elif shape == "clumps":  # a few loud buckets, quiet ones between
            sizes = [rng.randint(10, 36) for _ in range(rng.randint(3, 6))]
            scale = max(1.0, 1.5 * usual / sum(sizes))  # on a busier topic the clumps are bigger
            size = 0
            for j, c in zip(sorted(rng.sample(range(length), len(sizes))), sizes):
                extra[i + j] += round(c * scale)
                size += round(c * scale)
        else:  # an even rise, no loud bucket
            size = 0
            per = max(40, rng.uniform(3, 5) * usual) / length
            for j in range(length):
                c = _poisson(rng, per)
                extra[i + j] += c
                size += c
        planted.append(Burst(shape, T0 + i * BUCKET, length * BUCKET, size))

    counts = [(T0 + i * BUCKET, _poisson(rng, rates[i]) + extra[i]) for i in range(n)]
    return Series(f"quiet{median}-s{seed}", counts, planted, seed)


def heats(series: Series) -> list[tuple[datetime, float]]:
    """(bucket start, the summed heat of its negatives): each mention's heat drawn independently."""
    rng = random.Random(series.seed * 7919 + len(series.counts))
    return [(at, round(sum(_mention_heat(rng) for _ in range(c)), 3)) for at, c in series.counts]


def _burst_starts(rng: random.Random, n: int, bursts: int) -> list[int]:
    """Bucket indexes after the first week, at least 36 hours apart, none in the last 12 hours."""
    first, last, gap = 7 * PER_DAY, n - PER_DAY // 2 - 96, int(1.5 * PER_DAY)
    for _ in range(1000):
        starts = sorted(rng.sample(range(first, last), bursts))
        if all(b - a >= gap for a, b in zip(starts, starts[1:])):
            return starts
    raise ValueError(f"cannot place {bursts} bursts at least 36 h apart in {n} buckets")
