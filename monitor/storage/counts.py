"""Mention counts per topic, platform and minute: the aggregate the rules warm up from.

:func:`add` runs in the transaction that stores the mentions (one upsert statement per poll),
so counts and mentions never disagree; :func:`since` reads them back for a restart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.core.domain import Mention
from monitor.core.heat import mention_heat
from monitor.storage.models import MentionCountRow

_TABLE = MentionCountRow.__table__
MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class MinuteCount:
    topic: str
    platform: str | None
    minute: datetime
    negative: int
    total: int
    negative_heat: float = 0.0


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def add(session: Session, mentions: Iterable[Mention]) -> int:
    """Count stored ``mentions`` into their (topic, platform, minute) rows; the number of rows touched."""
    totals: Counter = Counter()
    negatives: Counter = Counter()
    heats: Counter = Counter()
    for m in mentions:
        minute = minute_of(m.published_at)
        weight = mention_heat(m) if m.is_negative else 0.0
        for topic in m.topics:
            key = (topic, m.platform or "", minute)
            totals[key] += 1
            negatives[key] += m.is_negative
            heats[key] += weight
    if not totals:
        return 0
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    stmt = insert(_TABLE)
    stmt = stmt.on_conflict_do_update(
        index_elements=["topic", "platform", "minute"],
        set_={"negative": _TABLE.c.negative + stmt.excluded.negative, "total": _TABLE.c.total + stmt.excluded.total,
              "negative_heat": _TABLE.c.negative_heat + stmt.excluded.negative_heat})
    session.execute(stmt, [{"topic": t, "platform": p, "minute": minute, "negative": negatives[key], "total": n,
                            "negative_heat": heats[key]}
                           for key, n in sorted(totals.items()) for t, p, minute in (key,)])
    return len(totals)


def since(session: Session, start: datetime, end: datetime, step: timedelta = MINUTE) -> Iterator[MinuteCount]:
    """The counts of the minutes in ``[start, end)``, oldest first, streamed; with a ``step`` of several
    minutes, summed per step (aligned to the epoch, like the rules' buckets; ``minute`` is the step's
    start) — a restart reads 5-minute sums when its rules count in multiples of 5 minutes."""
    c = _TABLE.c
    if step == MINUTE:
        stmt = (select(c.topic, c.platform, c.minute, c.negative, c.total, c.negative_heat)
                .where(c.minute >= start, c.minute < end).order_by(c.minute, c.topic, c.platform))
    else:
        seconds = int(step.total_seconds())
        if session.get_bind().dialect.name == "postgresql":
            epoch = func.floor(func.extract("epoch", c.minute) / seconds) * seconds
        else:
            epoch = cast(func.strftime("%s", c.minute), Integer) // seconds * seconds  # // : integer division
        slot = epoch.label("slot")
        stmt = (select(c.topic, c.platform, slot, func.sum(c.negative), func.sum(c.total), func.sum(c.negative_heat))
                .where(c.minute >= start, c.minute < end).group_by(c.topic, c.platform, slot)
                .order_by(slot, c.topic, c.platform))
    for topic, platform, minute, negative, total, negative_heat in session.execute(
            stmt.execution_options(yield_per=5000)):
        if not isinstance(minute, datetime):
            minute = EPOCH + timedelta(seconds=int(minute))
        yield MinuteCount(topic, platform or None, minute, int(negative), int(total), float(negative_heat or 0.0))


def step_start(at: datetime, step: timedelta) -> datetime:
    """The start of the ``step`` (aligned to the epoch) that ``at`` falls in."""
    return EPOCH + (at - EPOCH) // step * step
