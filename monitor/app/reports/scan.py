"""One streaming pass over stored mentions: volume buckets, topics, authors, the most negative.

Mentions are read in chunks of at most a day, only the columns counted, so a
month of data never sits in memory; ``track`` wraps the chunk loop (a progress
bar in the CLI). Topic filtering happens here, not in SQL, because ``topics``
is a JSON list that SQLite and PostgreSQL query differently.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, Sequence, TypeVar
from zoneinfo import ZoneInfo

from monitor.app.reports.model import AuthorEntry, MentionEntry, Series
from monitor.core.domain import Mention
from monitor.storage import Session, history, repo

T = TypeVar("T")
Track = Callable[[Sequence[T], str], Iterable[T]]
NEGATIVE = "negative"
NO_TOPIC = "（无话题）"
# bucket sizes a chart may use, smallest first
STEPS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)]


def no_progress(items: Sequence[T], description: str) -> Iterable[T]:
    return items


def choose_step(span: timedelta, max_buckets: int = 96) -> timedelta:
    """The smallest bucket size that cuts ``span`` into at most ``max_buckets`` buckets."""
    for step in STEPS:
        if span / step <= max_buckets:
            return step
    return STEPS[-1]


def floor_to(at: datetime, step: timedelta, tz: str) -> datetime:
    """``at`` rounded down to a multiple of ``step`` on the local clock (midnight-aligned), in UTC."""
    local = at.astimezone(ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight + ((local - midnight) // step) * step).astimezone(timezone.utc)


@dataclass
class MentionStats:
    """Accumulates what the reports show about the mentions in ``[start, end)``."""

    start: datetime
    end: datetime
    step: timedelta
    tz: str = "Asia/Shanghai"
    top: int = 10
    focus: tuple[datetime, datetime] | None = None  # top mentions/authors only from here (default: all)
    totals: list[int] = field(init=False)
    negatives: list[int] = field(init=False)
    total: int = 0
    negative: int = 0
    focus_total: int = 0
    focus_negative: int = 0
    topics: Counter = field(default_factory=Counter)
    topic_negatives: Counter = field(default_factory=Counter)
    days: Counter = field(default_factory=Counter)
    day_negatives: Counter = field(default_factory=Counter)
    authors: Counter = field(default_factory=Counter)
    author_negatives: Counter = field(default_factory=Counter)
    _worst: list = field(default_factory=list)  # bounded heap of the most negative story roots

    def __post_init__(self) -> None:
        n = max(1, -(-(self.end - self.start) // self.step))
        self.totals, self.negatives = [0] * n, [0] * n
        self._zone = ZoneInfo(self.tz)

    def add(self, id_: int, at: datetime, label: str | None, score: float | None, topics: Sequence[str],
            author: str | None, story_id: int | None, reposts: int) -> None:
        negative = label == NEGATIVE
        i = int((at - self.start) // self.step)
        if 0 <= i < len(self.totals):
            self.totals[i] += 1
            self.negatives[i] += negative
        self.total += 1
        self.negative += negative
        day = at.astimezone(self._zone).date()
        self.days[day] += 1
        self.day_negatives[day] += negative
        for topic in topics or (NO_TOPIC,):
            self.topics[topic] += 1
            self.topic_negatives[topic] += negative
        if self.focus and not (self.focus[0] <= at < self.focus[1]):
            return
        self.focus_total += 1
        self.focus_negative += negative
        if author:
            self.authors[author] += 1
            self.author_negatives[author] += negative
        if negative and story_id is None:  # a copy's story root is listed instead
            score = 0.5 if score is None else score
            item = (-score, reposts, -at.timestamp(), -id_)
            if len(self._worst) < self.top:
                heapq.heappush(self._worst, item)
            else:
                heapq.heappushpop(self._worst, item)

    def series(self) -> Series:
        return Series(self.start, self.step, tuple(self.totals), tuple(self.negatives))

    def worst_ids(self) -> list[int]:
        return [-item[3] for item in sorted(self._worst, reverse=True)]

    def top_authors(self) -> list[AuthorEntry]:
        ranked = sorted(self.author_negatives.items(), key=lambda kv: (-kv[1], -self.authors[kv[0]], kv[0]))
        return [AuthorEntry(a, n, self.authors[a]) for a, n in ranked[: self.top] if n]

    def day_counts(self, day: date) -> tuple[int, int]:
        return self.days.get(day, 0), self.day_negatives.get(day, 0)


def scan(session: Session, stats: MentionStats, *, topic: str | None = None,
         track: Track = no_progress, description: str = "mentions") -> MentionStats:
    """Feed every mention published in ``[stats.start, stats.end)`` (of ``topic``, if given) to ``stats``."""
    for lo, hi in track(list(_chunks(stats.start, stats.end)), description):
        for p in history.mention_points(session, lo, hi):
            if topic is not None and topic not in p.topics:
                continue
            stats.add(p.id, p.published_at, p.label, p.score, p.topics, p.author, p.story_id, p.repost_count)
    return stats


def _chunks(start: datetime, end: datetime, size: timedelta = timedelta(days=1)) -> Iterator[tuple[datetime, datetime]]:
    lo = start
    while lo < end:
        hi = min(lo + size, end)
        yield lo, hi
        lo = hi


def mention_entry(m: Mention) -> MentionEntry:
    return MentionEntry(m.id or 0, m.published_at, m.source, m.author, m.text, m.score, m.url, m.repost_count)


def mention_entries(session: Session, ids: Sequence[int]) -> list[MentionEntry]:
    """Full mentions for ``ids``, in that order."""
    return [mention_entry(m) for m in repo.mentions_by_ids(session, ids)]
