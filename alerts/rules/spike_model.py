"""The statistics behind ``negative_spike``: one robust baseline, evaluated at several time scales.

Counts (or heat) are kept per clock-aligned ``bucket`` (:class:`BucketCounts`, prefix sums kept
lazily, so the sum of any run of buckets costs O(1)). A :class:`Scale` of ``k`` buckets looks at
the rolling window of the last ``k`` buckets — ``W(i)``, the sum over buckets ``i-k+1 … i`` — and
judges it against the same kind of baseline at every scale:

* **expected** ``mu(i)`` comes from *earlier, non-overlapping* windows of the same length (each
  ending at or before ``i-k``, so a burst never lifts its own baseline): the *time-of-day* median
  — the windows ending at the same time and a quarter window (at least a bucket) either side on
  each of the previous ``days`` days (night is quiet, evenings are loud) — times *today's level*:
  the ``reference`` (6h) before the window against the same hours on those days (their median),
  capped at ×2 and ×½, so a busy day does not look like a spike nor a quiet one hide it.
  ``seasonal_weight`` < 1 blends in the plain median of the windows in the ``reference``; before
  there is a previous day, that median alone. Floored at ``k × floor``.
* **residual** ``(W - mu) / sqrt(mu)`` — a Pearson residual, 1 for Poisson noise.
* **dispersion** ``phi`` — mention counts are over-dispersed, more so the longer the window
  (a topic's level drifts during the day). Each scale measures its own: ``max(1, RMS of the
  residuals around their median)`` over the windows of the previous day (at least three
  windows' worth), sampled every quarter window, recomputed once an hour. A bursty day raises
  the bar for the next one; a calm day lowers it.
* **z** ``= residual / phi``.

Buckets before the first covered one are unknown, not zero: a window that reaches before them has
no value. Cached values are dropped when a count they depend on changes (late mentions), so the
outcome is a pure function of the counts — the same after a restart that replays them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median

DAY = timedelta(days=1)
MIN_RESIDUALS = 12  # fewer past windows than this: assume Poisson noise (phi = 1)
LEVEL_CAP = 2.0  # today's level scales the time-of-day median by at most this factor, up or down
LEVEL_PRIOR = 5.0  # added to both sides of the level ratio, so a handful of mentions cannot swing it


class BucketCounts:
    """Values per bucket of ``bucket`` length counted from ``origin``, and sums over runs of buckets."""

    def __init__(self, bucket: timedelta, origin: datetime):
        self.bucket = bucket
        self.origin = origin
        self.counts: dict[int, float] = {}
        self.first: int | None = None  # first covered bucket
        self._prefix: dict[int, float] = {}  # sum of the buckets from `first` through i
        self._valid = 0  # _prefix is right through this bucket
        self._edge: int | None = None  # buckets at or before it were pruned
        self.listeners: list = []  # told the lowest bucket whose value changed

    def index(self, at: datetime) -> int:
        return (at - self.origin) // self.bucket

    def start(self, i: int) -> datetime:
        return self.origin + i * self.bucket

    def cover(self, since: datetime) -> None:
        """Data is complete from ``since`` on (earlier buckets are unknown)."""
        i = self.index(since)
        if self._edge is not None:
            i = max(i, self._edge + 1)
        if self.first is None or i < self.first:
            self.first = i
            self._prefix, self._valid = {i - 1: 0}, i - 1
            self._changed(i - 1)

    def known(self, i: int) -> bool:
        return self.first is not None and i >= self.first

    def add(self, at: datetime, value: float = 1) -> None:
        if self.first is None:
            self.cover(at)
        i = self.index(at)
        if self._edge is not None and i <= self._edge:
            return  # beyond every horizon: it can change no decision
        self.counts[i] = self.counts.get(i, 0) + value
        self._valid = min(self._valid, i - 1)
        self._changed(i)

    def count(self, i: int) -> float:
        return self.counts.get(i, 0)

    def total(self, i: int, k: int) -> float | None:
        """The sum of buckets ``i-k+1 … i`` (None when that reaches before the first covered one, or a pruned one)."""
        if self.first is None or i - k + 1 < self.first or (self._edge is not None and i - k < self._edge):
            return None
        return self._upto(i) - self._upto(i - k)

    def _upto(self, i: int) -> float:
        while self._valid < i:
            self._valid += 1
            self._prefix[self._valid] = self._prefix[self._valid - 1] + self.counts.get(self._valid, 0)
        return self._prefix[i]

    def prune(self, keep_from: int) -> None:
        """Forget buckets before ``keep_from`` (sums over later ones stay exact)."""
        if self.first is None or keep_from - 1 <= (self._edge if self._edge is not None else self.first - 1):
            return
        self._upto(keep_from - 1)
        for store in (self.counts, self._prefix):
            _drop(store, self._edge, keep_from - 1)
        self._edge = keep_from - 1

    def _changed(self, i: int) -> None:
        for listener in self.listeners:
            listener.invalidate(i)


class Scale:
    """The rolling window of ``k`` buckets over ``counts``: its sum, expected value and z."""

    def __init__(self, counts: BucketCounts, k: int, *, reference: int, days: int, seasonal_weight: float,
                 floor: float, per_day: int):
        self.counts = counts
        self.k = k
        self.reference = reference  # buckets
        self.trailing = max(1, reference // k)  # windows in the reference
        self.days = days
        self.per_day = per_day
        self.seasonal_weight = seasonal_weight
        self.floor = floor * k
        self.lookback = max(per_day, 3 * k)  # buckets of residuals behind the dispersion
        self.stride = max(1, k // 4)
        self.block = max(1, per_day // 24)  # dispersion recomputed once an hour
        self._mu: dict[int, float | None] = {}
        self._residual: dict[int, float | None] = {}  # depends on its own window too
        self._phi: dict[int, float] = {}
        self._changed: int | None = None
        self._top: int | None = None  # no mu or phi is cached for a bucket after this one
        self._top_residual: int | None = None  # nor a residual
        self._kept_from: int | None = None  # no cached value is for a bucket before this one
        counts.listeners.append(self)

    def horizon(self) -> int:
        """Buckets of history that a decision at the current bucket depends on."""
        behind_mu = max(self.days * self.per_day + self.k + self.reference, self.trailing * self.k) + self.k
        return self.k + self.lookback + self.block + behind_mu

    def window(self, i: int) -> float | None:
        return self.counts.total(i, self.k)

    def mu(self, i: int) -> float | None:
        """Expected sum of the window ending at bucket ``i``, from earlier windows (None: no history)."""
        self._check()
        if i in self._mu:
            return self._mu[i]
        k = self.k
        h = self.stride  # neighbours a quarter window away: close enough in time to share the rhythm
        seasonal = [w for d in range(1, self.days + 1) for o in (-h, 0, h)
                    if (end := i - d * self.per_day + o) <= i - k and (w := self.window(end)) is not None]
        value: float | None = None
        if seasonal:
            value = median(seasonal) * self.level(i)
        if self.seasonal_weight < 1 or not seasonal:
            trailing = [w for m in range(1, self.trailing + 1) if (w := self.window(i - m * k)) is not None]
            if trailing:
                recent = median(trailing)
                value = recent if value is None else self.seasonal_weight * value + (1 - self.seasonal_weight) * recent
        if value is not None:
            value = max(value, self.floor)
        self._remember(self._mu, i, value)
        return value

    def level(self, i: int) -> float:
        """How busy today is: the ``reference`` before the window ending at ``i`` against the same hours
        on the previous days (their median), within ``1/LEVEL_CAP … LEVEL_CAP``; 1 without those days."""
        end = i - self.k
        now = self.counts.total(end, self.reference)
        before = [t for d in range(1, self.days + 1)
                  if (t := self.counts.total(end - d * self.per_day, self.reference)) is not None]
        if now is None or not before:
            return 1.0
        return min(LEVEL_CAP, max(1 / LEVEL_CAP, (now + LEVEL_PRIOR) / (median(before) + LEVEL_PRIOR)))

    def residual(self, i: int) -> float | None:
        self._check()
        if i in self._residual:
            return self._residual[i]
        m, w = self.mu(i), self.window(i)
        value = None if m is None or w is None else (w - m) / math.sqrt(m)
        self._residual[i] = value
        self._top_residual = i if self._top_residual is None else max(self._top_residual, i)
        return value

    def phi(self, i: int) -> float:
        """Dispersion of the windows of the previous day (>= 1), as of the hour that holds ``i``."""
        self._check()
        start = i - i % self.block
        if start in self._phi:
            return self._phi[start]
        last = start - self.k  # the newest window that does not overlap one ending in this hour
        residuals = [r for j in range(last, last - self.lookback, -self.stride)
                     if (r := self.residual(j)) is not None]
        value = 1.0
        if len(residuals) >= MIN_RESIDUALS:
            centre = median(residuals)
            value = max(1.0, math.sqrt(sum((r - centre) ** 2 for r in residuals) / len(residuals)))
        self._remember(self._phi, start, value)
        return value

    def z(self, i: int) -> float | None:
        """How unusual the window ending at bucket ``i`` is, in robust standard deviations."""
        m, w = self.mu(i), self.window(i)  # not cached: the window in progress still grows
        return None if m is None or w is None else (w - m) / math.sqrt(m) / self.phi(i)

    # -- caches --------------------------------------------------------------------------------
    def invalidate(self, i: int) -> None:
        self._changed = i if self._changed is None else min(self._changed, i)

    def prune(self, keep_from: int) -> None:
        for store in (self._mu, self._residual, self._phi):
            _drop(store, self._kept_from, keep_from)
        self._kept_from = keep_from

    def _remember(self, store: dict, i: int, value) -> None:
        store[i] = value
        self._top = i if self._top is None else max(self._top, i)

    def _check(self) -> None:
        """Drop cached values that may depend on a changed bucket (those of later buckets)."""
        if self._changed is None:
            return
        changed, self._changed = self._changed, None
        # mu and phi of bucket i depend on buckets before i; a residual on its own window too
        if self._top is not None and changed < self._top:
            for store in (self._mu, self._phi):
                for i in [i for i in store if i > changed]:
                    del store[i]
            self._top = changed
        if self._top_residual is not None and changed <= self._top_residual:
            for i in [i for i in self._residual if i >= changed]:
                del self._residual[i]
            self._top_residual = changed - 1


def _drop(store: dict[int, object], since: int | None, before: int) -> None:
    """Delete the keys in ``[since, before)`` (all keys below ``before`` when ``since`` is None):
    a step costs what it removes, not what the store holds."""
    if since is None:
        since = min(store, default=before)
    for i in range(since, before):
        store.pop(i, None)

