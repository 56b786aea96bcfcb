"""Plain values a report is made of: no database rows, no rendering.

Every datetime is aware UTC; templates show them in the report's timezone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor: str
    message: str


@dataclass(frozen=True)
class StepEntry:
    position: int
    title: str
    owner: str
    status: str  # pending | done | skipped
    due_at: datetime | None
    done_at: datetime | None
    done_by: str | None

    @property
    def late(self) -> bool:
        """Done (or skipped) after its due time."""
        return bool(self.due_at and self.done_at and self.done_at > self.due_at)


@dataclass(frozen=True)
class MentionEntry:
    id: int
    at: datetime
    source: str
    author: str | None
    text: str
    score: float | None
    url: str | None
    reposts: int = 0  # copies folded into this story by dedup


@dataclass(frozen=True)
class AuthorEntry:
    author: str
    negative: int
    total: int


@dataclass(frozen=True)
class Series:
    """Mention volume and negatives per bucket ``[start + i*step, start + (i+1)*step)``."""

    start: datetime
    step: timedelta
    totals: tuple[int, ...]
    negatives: tuple[int, ...]

    @property
    def times(self) -> list[datetime]:
        return [self.start + i * self.step for i in range(len(self.totals))]

    @property
    def shares(self) -> list[float | None]:
        """Negative share per bucket in [0, 1]; None where there was no mention."""
        return [n / t if t else None for n, t in zip(self.negatives, self.totals)]

    @property
    def end(self) -> datetime:
        return self.start + len(self.totals) * self.step


@dataclass(frozen=True)
class Marker:
    at: datetime
    label: str  # ASCII: drawn on the chart


@dataclass(frozen=True)
class ChannelStat:
    channel: str
    sent: int
    failed: int
    silenced: int


@dataclass(frozen=True)
class IncidentSummary:
    id: int
    title: str
    topic: str
    rule: str
    severity: str
    status: str
    reason: str
    numbers: dict[str, Any]
    opened_at: datetime
    acked_at: datetime | None
    acked_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    assignee: str | None
    plan: str | None
    carried_over: bool = False  # opened before the reported period

    @property
    def tta(self) -> timedelta | None:
        return self.acked_at - self.opened_at if self.acked_at else None

    @property
    def ttr(self) -> timedelta | None:
        return self.resolved_at - self.opened_at if self.resolved_at else None


@dataclass(frozen=True)
class IncidentReport:
    incident: IncidentSummary
    timeline: list[TimelineEntry]
    steps: list[StepEntry]
    series: Series
    markers: list[Marker]
    span_start: datetime  # where "top negative mentions / authors" are taken from
    span_end: datetime
    total: int  # mentions of the topic in the span
    negative: int
    top_negative: list[MentionEntry]
    top_authors: list[AuthorEntry]
    evidence: list[MentionEntry]  # cited on the timeline by the rule
    notifications: list[ChannelStat]
    tz: str
    generated_at: datetime

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.total if self.total else None


@dataclass(frozen=True)
class TopicStat:
    topic: str
    total: int
    negative: int

    @property
    def share(self) -> float | None:
        return self.negative / self.total if self.total else None


@dataclass(frozen=True)
class SeverityStat:
    severity: str
    count: int
    mtta: timedelta | None
    mttr: timedelta | None


@dataclass(frozen=True)
class DayStat:
    day: date
    total: int
    negative: int
    incidents: int
    mtta: timedelta | None
    mttr: timedelta | None

    @property
    def share(self) -> float | None:
        return self.negative / self.total if self.total else None


@dataclass(frozen=True)
class SummaryReport:
    """A day (``kind="daily"``) or several (``"period"``): incidents, MTTA/MTTR, volume per topic."""

    kind: str
    first_day: date
    last_day: date  # inclusive
    start: datetime  # UTC bounds of [first_day 00:00, last_day+1 00:00) in tz
    end: datetime
    tz: str
    incidents: list[IncidentSummary]  # newest first; carried_over ones were opened earlier
    by_severity: list[SeverityStat]
    topics: list[TopicStat]
    days: list[DayStat]
    series: Series
    total: int
    negative: int
    top_negative: list[MentionEntry]
    top_authors: list[AuthorEntry]
    generated_at: datetime
    opened: list[IncidentSummary] = field(default_factory=list)  # opened in the period: MTTA/MTTR base

    @property
    def mtta(self) -> timedelta | None:
        return mean_duration(i.tta for i in self.opened)

    @property
    def mttr(self) -> timedelta | None:
        return mean_duration(i.ttr for i in self.opened)

    @property
    def acked(self) -> int:
        return sum(1 for i in self.opened if i.acked_at)

    @property
    def resolved(self) -> int:
        return sum(1 for i in self.opened if i.resolved_at)

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.total if self.total else None


def mean_duration(values: Iterable[timedelta | None]) -> timedelta | None:
    """The mean of the durations that are known; None when none is."""
    known: Sequence[timedelta] = [v for v in values if v is not None]
    if not known:
        return None
    return timedelta(seconds=round(sum(v.total_seconds() for v in known) / len(known)))
