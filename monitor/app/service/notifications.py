"""The notification log for people: every page, its delivery per channel and each attempt.

Rows come from :mod:`monitor.storage.history` (pages, deliveries, notifications); failed pages
(or pages with a failed channel) come first.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.app.service.context import Context
from monitor.core.errors import UsageError
from monitor.storage import history
from monitor.storage.history import Attempt, ChannelLog, PageLog

__all__ = ["Attempt", "ChannelLog", "Log", "PAGE_STATUSES", "PageLog", "log"]

PAGE_STATUSES = ("failed", "pending", "delivered", "silenced")
PAGE_SIZE = 30


@dataclass(frozen=True)
class Log:
    pages: list[PageLog]
    counts: dict[str, int]  # pages per outcome, all of them
    held_back: list[Attempt]  # pages silenced before they were queued (no delivery), newest first
    page: int  # 1-based
    more: bool  # a next page exists


def log(ctx: Context, *, status: str | None = None, page: int = 1, per_page: int = PAGE_SIZE) -> Log:
    """Page ``page`` of the pages (``status``: failed / pending / delivered / silenced only)."""
    if status is not None and status not in PAGE_STATUSES:
        raise UsageError(f"status: expected one of {', '.join(PAGE_STATUSES)}, got {status!r}")
    page = max(1, page)
    with ctx.db.session() as s:
        pages = history.page_log(s, status=status, offset=(page - 1) * per_page, limit=per_page + 1)
        counts = history.page_counts(s)
        held = history.held_back(s) if page == 1 and status in (None, "silenced") else []
    return Log(pages[:per_page], counts, held, page, len(pages) > per_page)
