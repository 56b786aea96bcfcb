"""alerts.rules.spike_model: bucket sums, and a scale's baseline as a pure function of the counts."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from alerts.rules.spike_model import BucketCounts, Scale

B = timedelta(minutes=5)
ORIGIN = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY = 288


def at(i: int) -> datetime:
    return ORIGIN + i * B + B / 2


def scale(counts: BucketCounts, k: int, days: int = 1, reference: int = 72) -> Scale:
    return Scale(counts, k, reference=reference, days=days, seasonal_weight=1.0, floor=0.05, per_day=DAY)


def test_sums_over_runs_of_buckets_and_unknown_before_the_first_covered_one():
    c = BucketCounts(B, ORIGIN)
    c.cover(at(10))
    for i, v in ((10, 2), (11, 3), (13, 1.5)):
        c.add(at(i), v)
    assert c.total(11, 2) == 5 and c.total(13, 4) == 6.5 and c.total(20, 5) == 0
    assert c.total(11, 3) is None  # reaches bucket 9, before the data starts
    c.add(at(11), 1)  # a late mention
    assert c.total(13, 4) == 7.5
    c.cover(at(8))  # older data turns up: earlier buckets are now known
    c.add(at(8), 4)
    assert (c.total(11, 3), c.total(13, 6)) == (6, 11.5)


def test_pruning_keeps_later_sums_exact_and_drops_what_no_window_reaches():
    c = BucketCounts(B, ORIGIN)
    c.cover(at(0))
    for i in range(100):
        c.add(at(i), i)
    c.prune(50)
    assert c.total(99, 50) == sum(range(50, 100))
    assert c.total(60, 20) is None and set(c.counts) == set(range(49, 100))  # reaches a pruned bucket
    c.add(at(10), 1000)  # beyond every horizon
    assert c.total(99, 50) == sum(range(50, 100))


def test_the_window_mean_and_dispersion_of_a_steady_poisson_like_topic():
    c = BucketCounts(B, ORIGIN)
    c.cover(at(0))
    rng = random.Random(3)
    for i in range(2 * DAY):
        c.add(at(i), rng.choice((3, 4, 5)))
    hour = scale(c, 12)
    i = 2 * DAY - 1
    assert hour.mu(i) == pytest.approx(48, rel=0.1)
    assert hour.phi(i) == 1.0  # less spread than Poisson: floored at 1
    assert hour.z(i) == pytest.approx((hour.window(i) - hour.mu(i)) / math.sqrt(hour.mu(i)))


def test_a_bursty_day_raises_the_dispersion_of_the_next():
    def phi_after(burst: int) -> float:
        c = BucketCounts(B, ORIGIN)
        c.cover(at(0))
        for i in range(2 * DAY):
            c.add(at(i), 4 + (burst if i in (DAY + 100, DAY + 200) else 0))
        return scale(c, 12).phi(2 * DAY - 1)

    assert phi_after(0) == 1.0
    assert phi_after(60) > 2.5


def test_results_are_a_pure_function_of_the_counts_whatever_the_arrival_order():
    """Late data invalidates exactly what depends on it: a model that saw the counts shuffled, and
    was asked in between, answers as one fed in order."""
    rng = random.Random(11)
    values = [(i, rng.randint(0, 6) + (30 if 400 <= i < 410 else 0)) for i in range(2 * DAY)]

    ordered = BucketCounts(B, ORIGIN)
    ordered.cover(at(0))
    for i, v in values:
        ordered.add(at(i), v)
    reference = scale(ordered, 12)

    shuffled = BucketCounts(B, ORIGIN)
    shuffled.cover(at(0))
    late = scale(shuffled, 12)
    chunks = [values[k:k + 50] for k in range(0, len(values), 50)]
    for chunk in chunks:  # each chunk in random order, some values held back until the next one
        rng.shuffle(chunk)
    held = []
    for chunk in chunks:
        for i, v in held + chunk[:40]:
            shuffled.add(at(i), v)
        held = chunk[40:]
        top = max(i for i, _ in chunk)
        late.z(top), late.phi(top - 30), late.mu(top - 60)  # fill the caches with what is known so far
    for i, v in held:
        shuffled.add(at(i), v)
    for i in range(DAY, 2 * DAY):
        assert (late.mu(i), late.phi(i), late.z(i)) == (reference.mu(i), reference.phi(i), reference.z(i))
