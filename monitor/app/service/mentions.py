"""Stored mentions for people: search them, open one with its story, see who corrected its label.

A correction itself is :func:`monitor.app.service.sentiment.label` (the feedback table, actor recorded);
here the current label of a mention is the newest correction if any, else the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.app.service.context import Context, duration
from monitor.core.domain import Mention
from monitor.core.errors import UsageError
from monitor.storage import feedback as feedback_store
from monitor.storage import repo
from monitor.storage.feedback import Feedback
from monitor.storage.repo import MentionQuery
from nlp.feedback import FEEDBACK_LABELS

__all__ = ["FEEDBACK_LABELS", "Found", "MentionQuery", "Page", "Story", "mention", "parse_time", "search"]

PAGE_SIZE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class Found:
    """A mention with its current label: the newest correction (``corrected``) or the model's."""

    mention: Mention
    corrected: Feedback | None = None

    @property
    def label(self) -> str | None:
        return self.corrected.label if self.corrected else self.mention.label


@dataclass(frozen=True)
class Page:
    items: list[Found]
    next_before_id: int | None  # the ``before_id`` of the next page; None: this is the last one


@dataclass(frozen=True)
class Story:
    found: Found  # the mention asked for
    root: Mention  # the story's first mention (the mention itself when it is a root)
    reposts: list[Mention]  # newest first, at most a hundred (root.repost_count says how many)
    corrections: list[Feedback]  # of the mention, newest first


def parse_time(value: str | None, tz: str, now: datetime, option: str, *, end_of_day: bool = False) -> datetime | None:
    """A time people type, in ``tz``: ``2026-03-15``, ``2026-03-15 18:00`` / ``2026-03-15T18:00``, or a
    duration back from ``now`` (``24h``). A bare date is its start (with ``end_of_day``: the next midnight)."""
    text = (value or "").strip()
    if not text:
        return None
    if text[0].isdigit() and "-" not in text:
        return now - duration(text, option, "24h")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            at = datetime.combine(day, time(), ZoneInfo(tz))
        else:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        raise UsageError(f'{option}: expected a time like "2026-03-15 18:00", a date or a duration like "24h", '
                         f'got {value!r}') from None
    return at.astimezone(now.tzinfo)


def search(ctx: Context, query: MentionQuery, *, before_id: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """Mentions matching ``query``, newest first, a page of ``limit`` (at most 200) at a time."""
    if query.label is not None and query.label not in FEEDBACK_LABELS:
        raise UsageError(f"label: expected one of {', '.join(FEEDBACK_LABELS)}, got {query.label!r}")
    if query.since and query.until and query.since >= query.until:
        raise UsageError("since: the time range is empty (since is not before until)")
    limit = max(1, min(limit, MAX_PAGE))
    with ctx.db.session() as s:
        rows = repo.search_mentions(s, query, before_id=before_id, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        newest = _newest_corrections(s, [m.id for m in rows])
    items = [Found(m, newest.get(m.id)) for m in rows]
    return Page(items, rows[-1].id if more else None)


def mention(ctx: Context, mention_id: int) -> Story:
    """One mention, its story (root and reposts) and its corrections."""
    with ctx.db.session() as s:
        found = repo.story(s, mention_id)
        if found is None:
            raise UsageError(f"no mention #{mention_id}")
        root, reposts = found
        itself = root if root.id == mention_id else repo.mentions_by_ids(s, [mention_id])[0]
        corrections = feedback_store.of_mentions(s, [mention_id])[::-1]
    return Story(Found(itself, corrections[0] if corrections else None), root, reposts, corrections)


def _newest_corrections(s, ids: list[int]) -> dict[int, Feedback]:
    return {f.mention_id: f for f in feedback_store.of_mentions(s, ids)}  # oldest first: the newest wins
