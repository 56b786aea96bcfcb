"""Repeated warnings, counted: one line per source and reason per interval, not one per item per poll.

A feed whose 200 items all carry an unreadable date is one problem, not 2,800
WARNING lines a minute. :class:`Throttle` decides (pure: the time is passed in);
:class:`QuietLog` logs what it decides:

- the first occurrence of a (source, reason) is logged at once, with an example;
- later ones within ``interval`` are only counted;
- the first one after ``interval`` logs the count since the last line, e.g.
  "skipped 180 items with unreadable dates in the last 10m (e.g. item 'x': …)".

Counts still pending when a problem stops are not logged (nothing happens to
trigger the line); the poll reports (``PollReport.skipped``) keep every reason.

Skip reasons are free text naming the item; :func:`skip_kind` sorts them into the
reasons a line is keyed by ("skipped {n} items with unreadable dates", …).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

DEFAULT_INTERVAL = 600.0  # seconds

# Kinds of skip reason, by words the sources' reasons contain (first match wins).
_SKIP_KINDS = (
    (("cut off",), "skipped {n} entries cut off by a truncated document"),
    (("unreadable time", "unreadable date"), "skipped {n} items with unreadable dates"),
    (("unreadable count",), "skipped {n} items with unreadable counts"),
    (("neither title nor text", "no text or title", "missing text", "not a string"), "skipped {n} items without text"),
    (("missing id", "empty external_id"), "skipped {n} items without an id"),
    (("invalid JSON", "not UTF-8", "CSV columns", "expected a JSON object", "expected an object", "unknown encoding"),
     "skipped {n} unreadable records"),
)
_OTHER = "skipped {n} unusable items"


def skip_kind(reason: str) -> str:
    """The reason template (with ``{n}``) a skip reason is counted under."""
    for words, kind in _SKIP_KINDS:
        if any(word in reason for word in words):
            return kind
    return _OTHER


@dataclass
class _Tally:
    since: float  # when the last line for this key was logged
    count: int = 0  # occurrences since, not yet logged
    example: str | None = None  # the latest one that came with an example


class Throttle:
    """Decides which repeated warnings to log. ``reason`` is a template with ``{n}`` (the count)."""

    def __init__(self, interval: float = DEFAULT_INTERVAL):
        self.interval = interval
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def note(self, source: str, reason: str, now: float, n: int = 1, example: str | None = None) -> str | None:
        """The line to log for ``n`` more occurrences at ``now`` (seconds), or None while the reason is quiet."""
        key = (source, reason)
        tally = self._tallies.get(key)
        if tally is None:
            self._tallies[key] = _Tally(since=now, example=example)
            return _line(reason.format(n=n), example)
        tally.count += n
        tally.example = example if example is not None else tally.example
        if now - tally.since < self.interval:
            return None
        line = _line(f"{reason.format(n=tally.count)} in the last {_span(now - tally.since)}", tally.example)
        self._tallies[key] = _Tally(since=now, example=tally.example)
        return line


class QuietLog:
    """A logger's warnings through a :class:`Throttle` (the clock is monotonic seconds)."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.throttle = Throttle(interval)
        self.clock = clock

    def warning(self, source: str, stage: str, reason: str, n: int = 1, example: str | None = None) -> None:
        line = self.throttle.note(source, reason, self.clock(), n, example)
        if line is not None:
            self.logger.warning("[source=%s stage=%s] %s", source, stage, line)

    def skipped(self, source: str, stage: str, reasons: Iterable[str]) -> None:
        """Skip reasons of one poll, counted per kind (:func:`skip_kind`)."""
        by_kind: dict[str, list[str]] = {}
        for reason in reasons:
            by_kind.setdefault(skip_kind(reason), []).append(reason)
        for kind, group in by_kind.items():
            self.warning(source, stage, kind, len(group), group[-1])


def _line(text: str, example: str | None) -> str:
    if not example:
        return text
    if len(example) > 200:
        example = example[:200] + "…"
    return f"{text} (e.g. {example})"


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(1, round(seconds))}s"
    return f"{minutes}m" if minutes < 120 else f"{round(minutes / 60)}h"
