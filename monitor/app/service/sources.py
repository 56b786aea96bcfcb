"""Source health for people (``monitor sources``, ``monitor status``, the console).

The verdict is :func:`sources.health.assess` — the function the ``source_health`` rule pages by —
with the threshold of the rule that watches the source (:func:`failure_threshold`, default 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.rules.source_health import failure_threshold
from monitor.app.service.context import Context
from monitor.storage import repo
from sources.health import NEVER_POLLED, SourceHealth, assess


@dataclass(frozen=True)
class SourceView:
    name: str
    type: str
    health: SourceHealth  # .state: ok / erroring / failing / stale / never polled
    configured: bool  # False: polled once, no longer in the config
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_item_at: datetime | None = None
    last_error: str | None = None
    items_stored: int = 0

    @property
    def state(self) -> str:
        return self.health.state

    @property
    def polled(self) -> bool:
        return self.health.state != NEVER_POLLED

    @property
    def consecutive_failures(self) -> int:
        return self.health.failures

    @property
    def stale_for(self) -> timedelta | None:
        return self.health.stale_for

    @property
    def expect_every(self) -> timedelta | None:
        return self.health.expect_every


def source_views(ctx: Context, now: datetime) -> list[SourceView]:
    """Every configured source (config order), then sources polled before but no longer configured."""
    with ctx.db.session() as s:
        states = {st.name: st for st in repo.source_states(s)}
    configured = {c.name: c for c in ctx.config.sources}
    names = list(configured) + [n for n in states if n not in configured]
    result = []
    for name in names:
        st, c = states.get(name), configured.get(name)
        health = assess(st, expect_every=getattr(c, "expect_every", None), now=now,
                        threshold=failure_threshold(ctx.config.rules, name))
        if st is None:
            result.append(SourceView(name, c.type, health, True))
            continue
        result.append(SourceView(name, st.type, health, c is not None, st.last_poll_at, st.last_success_at,
                                   st.last_item_at, st.last_error, st.items_stored or 0))
    return result
