"""Helpers shared by the rule types: severity from magnitude, crisis words, evidence, windows.

Nothing here reads a clock: every function takes the time it needs.
"""

from __future__ import annotations

import bisect
import heapq
from datetime import datetime, timedelta
from typing import Generic, Iterable, Sequence, TypeVar

from alerts.rules.base import FOREVER
from monitor.core.severity import Severity
from monitor.core.domain import Mention
from nlp.crisis import raises_severity

EVIDENCE_SIZE = 5
T = TypeVar("T")


def raise_severity(severity: Severity, levels: int = 1) -> Severity:
    """``levels`` steps up the scale, capped at I (特别重大)."""
    return Severity(severity).raised(levels)


def level_for(value: float, thresholds: Sequence[float]) -> Severity:
    """Severity for ``value`` given the thresholds of III, II and I (ascending).

    At or above ``thresholds[0]`` is III, ``thresholds[1]`` II, ``thresholds[2]`` I; below is IV.
    """
    level = Severity.IV
    for severity, threshold in zip(Severity.ascending()[1:], thresholds):
        if value >= threshold:
            level = severity
    return level


def crisis_words(mention: Mention) -> tuple[str, ...]:
    """Crisis words the NLP stage found in a mention (``()`` if it found none or does not say)."""
    return tuple(getattr(mention, "crisis_words", None) or ())


def crisis_hits(mentions: Iterable[Mention]) -> list[str]:
    """Distinct crisis words over ``mentions``, in order of first appearance."""
    seen: dict[str, None] = {}
    for m in mentions:
        for word in crisis_words(m):
            seen.setdefault(word, None)
    return list(seen)


def with_crisis(severity: Severity, mentions: Iterable[Mention], enabled: bool = True) -> tuple[Severity, list[str]]:
    """Raise ``severity`` one level when a mention carries a crisis word that raises severity
    (not mere complaint vocabulary such as 投诉/退款, see :mod:`nlp.crisis`).

    A crisis word lifts IV→III→II but never to I (特别重大): that takes magnitude.
    Returns the severity and every crisis word seen (shown in the page either way).
    """
    words = crisis_hits(mentions) if enabled else []
    if any(raises_severity(w) for w in words) and severity < Severity.II:
        severity = raise_severity(severity)
    return severity, words


def raises(mention: Mention) -> bool:
    """Whether ``mention`` carries a crisis word that raises severity (see :func:`with_crisis`)."""
    return any(raises_severity(w) for w in crisis_words(mention))


def crisis_level(severity: Severity, raising: int, enabled: bool = True) -> Severity:
    """:func:`with_crisis`'s severity from a running count of raising mentions (no scan)."""
    if enabled and raising and severity < Severity.II:
        return raise_severity(severity)
    return severity


def most_negative(mentions: Iterable[Mention], size: int = EVIDENCE_SIZE) -> tuple[Mention, ...]:
    """The ``size`` lowest-scored mentions (unscored ones last), oldest first among equals."""
    ranked = sorted(mentions, key=lambda m: (m.score if m.score is not None else 1.0, m.published_at))
    return tuple(ranked[:size])


def crisis_note(words: Sequence[str]) -> str:
    return f"，含危机词「{'、'.join(words[:5])}」" if words else ""


class SlidingWindow(Generic[T]):
    """The items stamped in ``(now - length, now]``; items stamped later wait for their time.

    ``advance(now)`` moves the window and answers the items that entered it and those that left
    it (an item older than the window enters and leaves at once), so a rule keeps running
    counters: the cost of a step is the items that moved, not the items the window holds.
    ``items()`` lists the window in time order (then arrival order) — a scan, for the rare
    moments that need the mentions themselves (a page's evidence). ``now`` must not go back.
    """

    def __init__(self, length: timedelta) -> None:
        self.length = length
        self._future: list[tuple[datetime, int, T]] = []  # heaps of (time, arrival, item)
        self._visible: list[tuple[datetime, int, T]] = []
        self._seq = 0
        self.now: datetime | None = None  # where the last advance left the window

    def add(self, at: datetime, item: T) -> None:
        self._seq += 1
        heapq.heappush(self._future, (at, self._seq, item))

    def advance(self, now: datetime) -> tuple[list[tuple[datetime, T]], list[T]]:
        """``(entered as (time, item), left)``."""
        entered: list[tuple[datetime, T]] = []
        while self._future and self._future[0][0] <= now:
            entry = heapq.heappop(self._future)
            heapq.heappush(self._visible, entry)
            entered.append((entry[0], entry[2]))
        self.now = now
        left: list[T] = []
        edge = now - self.length
        while self._visible and self._visible[0][0] <= edge:
            left.append(heapq.heappop(self._visible)[2])
        return entered, left

    def next_change(self) -> datetime | None:
        """When the window next changes by time alone: an item's time comes, or the oldest one leaves."""
        times = []
        if self._future:
            times.append(self._future[0][0])
        if self._visible:
            times.append(self._visible[0][0] + self.length)
        return min(times, default=None)

    def items(self, now: datetime | None = None) -> list[T]:
        """The window's items as of the last advance — or as it would be at ``now`` (a scan)."""
        entries = sorted(self._visible, key=_key)
        if now is not None and now != self.now:
            entries = [e for e in entries if now - self.length < e[0] <= now]
        return [e[2] for e in entries]

    def __len__(self) -> int:
        return len(self._visible)


class WindowTimers:
    """``idle_until`` / ``touch`` for a rule whose state is a :class:`SlidingWindow` ``_recent`` and a
    :class:`Hysteresis` ``_state``: without new data only the window's edges and the recovery delay
    can change its decision (see :meth:`alerts.rules.base.Rule.idle_until`)."""

    _recent: "SlidingWindow"
    _state: "Hysteresis"

    def idle_until(self) -> datetime | None:
        if self._recent.now is None:
            return None
        return earliest(self._recent.next_change(), self._state.due()) or FOREVER

    def touch(self, now: datetime) -> None:
        self._state.touch(now)


class TimeIndex(Generic[T]):
    """Items kept sorted by time; items stamped in the future wait for their time.

    ``release(now)`` makes items at or before ``now`` visible (and returns them);
    ``window(start, end)`` returns the visible items in ``(start, end]``, oldest first.
    """

    def __init__(self) -> None:
        self._visible: list[tuple[datetime, int, T]] = []
        self._future: list[tuple[datetime, int, T]] = []
        self._seq = 0

    def add(self, at: datetime, item: T) -> None:
        self._seq += 1
        bisect.insort(self._future, (at, self._seq, item), key=_key)

    def release(self, now: datetime) -> list[tuple[datetime, T]]:
        cut = bisect.bisect_right(self._future, now, key=_time)
        released, self._future = self._future[:cut], self._future[cut:]
        for entry in released:
            bisect.insort(self._visible, entry, key=_key)
        return [(e[0], e[2]) for e in released]

    def prune(self, before: datetime) -> None:
        """Forget visible items stamped at or before ``before``."""
        del self._visible[: bisect.bisect_right(self._visible, before, key=_time)]

    def next_time(self) -> datetime | None:
        """The time of the earliest item still waiting for its time."""
        return self._future[0][0] if self._future else None

    def window(self, start: datetime, end: datetime) -> list[T]:
        lo = bisect.bisect_right(self._visible, start, key=_time)
        hi = bisect.bisect_right(self._visible, end, key=_time)
        return [e[2] for e in self._visible[lo:hi]]

    def count(self, start: datetime, end: datetime) -> int:
        lo = bisect.bisect_right(self._visible, start, key=_time)
        return bisect.bisect_right(self._visible, end, key=_time) - lo


def _time(entry: tuple) -> datetime:
    return entry[0]


def _key(entry: tuple) -> tuple[datetime, int]:
    return entry[0], entry[1]


def earliest(*times: datetime | None) -> datetime | None:
    """The earliest of the times given (None where there is none)."""
    return min((t for t in times if t is not None), default=None)


class Hysteresis:
    """Firing / recovered bookkeeping shared by the rule types.

    ``update(now, severity)`` with a severity while the condition holds, ``None`` when it
    does not. It answers ``("firing", severity)`` when the rule starts firing or the
    severity grows, ``("recovered", highest severity of the episode)`` once the condition
    has been false for ``resolve_after``, else ``None``.
    """

    def __init__(self, resolve_after) -> None:
        self.resolve_after = resolve_after
        self.severity: Severity | None = None
        self.last_true: datetime | None = None
        self.holds = False  # the condition at the last update

    def due(self) -> datetime | None:
        """When the recovery delay ends for a firing rule whose condition stopped holding, else None."""
        if self.severity is not None and not self.holds and self.last_true is not None:
            return self.last_true + self.resolve_after
        return None

    def touch(self, now: datetime) -> None:
        """An update at ``now`` with the condition unchanged since the last one (skipped by the engine)."""
        if self.holds and self.last_true is not None:
            self.last_true = max(self.last_true, now)

    @property
    def firing(self) -> bool:
        return self.severity is not None

    def update(self, now: datetime, severity: Severity | None) -> tuple[str, Severity] | None:
        self.holds = severity is not None
        if severity is not None:
            self.last_true = now if self.last_true is None else max(self.last_true, now)
            if self.severity is None or severity > self.severity:
                self.severity = severity
                return "firing", severity
            return None
        if self.severity is not None and self.last_true is not None and now - self.last_true >= self.resolve_after:
            ended, self.severity = self.severity, None
            return "recovered", ended
        return None
