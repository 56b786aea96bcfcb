"""Source health — the one decision behind the ``source_health`` rule, ``monitor sources`` and ``monitor status``.

:func:`assess` takes what is known of a source's polls (a stored source state, or the rule's own
memory), the source's ``expect_every``, the rule's ``failures`` threshold and the time, and says:

- ``failing`` — ``failures`` or more polls in a row failed (the rule pages);
- ``stale`` — no new item for longer than ``expect_every`` (the rule pages; never without it);
- ``erroring`` — the last poll(s) failed, fewer than the threshold: no page yet, but not ``ok``
  either (a single timeout is common; three in a row is an outage);
- ``ok`` — none of these;
- ``never polled`` — no poll recorded (only front ends ask about such a source).

Failing wins over stale, stale over erroring. Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

DEFAULT_FAILURES = 3  # consecutive failed polls that make a source failing (the rule's ``failures`` default)

OK, ERRORING, FAILING, STALE, NEVER_POLLED = "ok", "erroring", "failing", "stale", "never polled"


class PollHistory(Protocol):
    """What health needs of a source's polls; stored source states have these attributes."""

    consecutive_failures: int | None
    last_item_at: datetime | None  # the last poll that stored something new
    first_poll_at: datetime | None  # staleness counts from here until a first item


@dataclass(frozen=True)
class Polls:
    """A :class:`PollHistory` held in memory (the rule's view of its source)."""

    consecutive_failures: int = 0
    last_item_at: datetime | None = None
    first_poll_at: datetime | None = None


@dataclass(frozen=True)
class SourceHealth:
    state: str  # ok | erroring | failing | stale | never polled
    failures: int  # consecutive failed polls
    threshold: int  # failures that make ``failing``
    stale_for: timedelta | None  # without a new item (since the first poll if none came); None: never polled
    expect_every: timedelta | None

    @property
    def failing(self) -> bool:
        return self.failures >= self.threshold

    @property
    def stale(self) -> bool:
        return self.expect_every is not None and self.stale_for is not None and self.stale_for > self.expect_every

    @property
    def alerting(self) -> bool:
        """Failing or stale: what the ``source_health`` rule pages on."""
        return self.failing or self.stale


def assess(polls: PollHistory | None, *, expect_every: timedelta | None, now: datetime,
           threshold: int = DEFAULT_FAILURES) -> SourceHealth:
    """The health of a source at ``now`` (``polls`` None: never polled)."""
    if polls is None:
        return SourceHealth(NEVER_POLLED, 0, threshold, None, expect_every)
    failures = polls.consecutive_failures or 0
    since = polls.last_item_at or polls.first_poll_at
    stale_for = max(timedelta(0), now - since) if since is not None else None
    health = SourceHealth(OK, failures, threshold, stale_for, expect_every)
    if health.failing:
        state = FAILING
    elif health.stale:
        state = STALE
    else:
        state = ERRORING if failures else OK
    return SourceHealth(state, failures, threshold, stale_for, expect_every)
