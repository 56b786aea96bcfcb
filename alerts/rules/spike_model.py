"""The statistics behind ``negative_spike``: bucketed counts, a rhythm-aware baseline, a robust z.

Counts are kept per bucket (``bucket`` long, aligned to ``origin``). For bucket *i*:

* **baseline** ``mu(i)`` blends two medians, both of buckets strictly before *i*:
  the *time-of-day* median — the same bucket and its two neighbours on each of the previous
  ``days`` days (copes with the daily rhythm: night is quiet, evenings are loud) — and the
  *trailing* median of the last ``reference`` buckets (follows the current level). Weight
  ``seasonal_weight`` on the first. Either alone is used when the other has no data (a new
  topic has no previous days). Floored at ``floor`` so a silent topic is not compared with 0.
* **residual** ``(count - mu) / sqrt(mu)`` — a Pearson residual, 1 for Poisson noise.
* **dispersion** ``phi(i)`` — mention counts are over-dispersed (bursty), so residuals are
  scaled by the quasi-Poisson dispersion of the previous day: ``phi = max(1, RMS of the
  residuals around their median)``. A day with bursts raises the bar for the next one and a
  calm day lowers it (on the NAB series this halved the false pages of a median/MAD scale,
  which ignores past bursts).
* **z** ``= residual / phi``.

Buckets before the first covered one are unknown, not zero. Results are cached per bucket and
recomputed when a count they depend on changes (late mentions), so the outcome is a pure
function of the counts — the same after a restart that replays stored mentions.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median

DAY = timedelta(days=1)
MIN_RESIDUALS = 12  # fewer past buckets than this: assume Poisson noise (phi = 1)


class BucketBaseline:
    def __init__(self, bucket: timedelta, origin: datetime, *, reference: timedelta, days: int,
                 seasonal_weight: float, floor: float):
        self.bucket = bucket
        self.origin = origin
        self.reference_buckets = max(1, reference // bucket)
        self.days = days
        self.per_day = max(1, DAY // bucket)
        self.seasonal_weight = seasonal_weight
        self.floor = floor
        self.counts: dict[int, int] = {}
        self.first: int | None = None  # first covered bucket
        self._mu: dict[int, float | None] = {}
        self._phi: dict[int, float] = {}
        self._changed: int | None = None  # lowest bucket whose count changed since the caches were checked
        self._top: int | None = None  # no cached value is for a bucket after this one
        self._pruned_to = None

    # -- buckets ---------------------------------------------------------------------
    def index(self, at: datetime) -> int:
        return (at - self.origin) // self.bucket

    def start(self, i: int) -> datetime:
        return self.origin + i * self.bucket

    def cover(self, since: datetime) -> None:
        """Data is complete from ``since`` on (earlier buckets are unknown)."""
        i = self.index(since)
        if self.first is None or i < self.first:
            self.first = i
            self._touch(i - 1)

    def known(self, i: int) -> bool:
        return self.first is not None and i >= self.first

    def add(self, at: datetime, count: int = 1) -> None:
        i = self.index(at)
        self.counts[i] = self.counts.get(i, 0) + count
        self._touch(i)

    def count(self, i: int) -> int:
        return self.counts.get(i, 0)

    def horizon(self) -> int:
        """Buckets of history that decisions at the current bucket depend on."""
        return (self.days + 1) * self.per_day + self.reference_buckets + 2

    def history(self) -> timedelta:
        return self.horizon() * self.bucket

    def prune(self, now: datetime) -> None:
        keep_from = self.index(now) - self.horizon()
        if self._pruned_to is not None and keep_from - self._pruned_to < self.per_day // 24 + 1:
            return  # prune about once an hour of buckets
        self._pruned_to = keep_from
        for store in (self.counts, self._mu, self._phi):
            for i in [i for i in store if i < keep_from]:
                del store[i]

    # -- statistics --------------------------------------------------------------------
    def mu(self, i: int) -> float | None:
        """Expected count of bucket ``i`` from the buckets before it (None: no history yet)."""
        self._check()
        if i in self._mu:
            return self._mu[i]
        first = self.first if self.first is not None else i
        trailing = [self.count(j) for j in range(max(i - self.reference_buckets, first), i)]
        seasonal = [self.count(j) for d in range(1, self.days + 1)
                    for j in (i - d * self.per_day - 1, i - d * self.per_day, i - d * self.per_day + 1)
                    if first <= j < i]
        if trailing and seasonal:
            w = self.seasonal_weight
            value: float | None = w * median(seasonal) + (1 - w) * median(trailing)
        elif trailing or seasonal:
            value = median(trailing or seasonal)
        else:
            value = None
        if value is not None:
            value = max(value, self.floor)
        self._remember(self._mu, i, value)
        return value

    def residual(self, i: int) -> float | None:
        m = self.mu(i)
        return None if m is None else (self.count(i) - m) / math.sqrt(m)

    def phi(self, i: int) -> float:
        """Robust dispersion of the day before bucket ``i`` (>= 1)."""
        self._check()
        if i in self._phi:
            return self._phi[i]
        first = self.first if self.first is not None else i
        residuals = [r for j in range(max(i - self.per_day, first), i) if (r := self.residual(j)) is not None]
        value = 1.0
        if len(residuals) >= MIN_RESIDUALS:
            centre = median(residuals)
            value = max(1.0, math.sqrt(sum((r - centre) ** 2 for r in residuals) / len(residuals)))
        self._remember(self._phi, i, value)
        return value

    def z(self, i: int) -> float | None:
        """How unusual bucket ``i`` is, in robust standard deviations (None: no baseline)."""
        if not self.known(i):
            return None
        r = self.residual(i)
        return None if r is None else r / self.phi(i)

    # -- cache invalidation --------------------------------------------------------------
    def _touch(self, i: int) -> None:
        self._changed = i if self._changed is None else min(self._changed, i)

    def _remember(self, store: dict, i: int, value) -> None:
        store[i] = value
        self._top = i if self._top is None else max(self._top, i)

    def _check(self) -> None:
        """Drop cached values that depend on a changed count (everything after it)."""
        if self._changed is None:
            return
        changed, self._changed = self._changed, None
        if self._top is None or changed >= self._top:
            return
        for store in (self._mu, self._phi):
            for i in [i for i in store if i > changed]:
                del store[i]
        self._top = changed
