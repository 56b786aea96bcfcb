"""The notification pipeline's frame, after Alertmanager's ``notify/notify.go``.

A :class:`Stage` takes a page's :class:`Context` and the channels still in play and returns the
channels that go on; a stage that holds a page back (silenced, deferred, already sent) records why
and returns fewer. :class:`MultiStage` runs stages in order and stops once nothing is left;
:class:`FanoutStage` runs one stage per channel, one send per channel at a time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Protocol, Sequence

from alerts.alert import Alert
from alerts.delivery import Outcome
from monitor.storage.deliveries import Job

# Every stage logs as "alerts.notify": operators (and tests) filter on that one name.
log = logging.getLogger("alerts.notify")


@dataclass
class Context:
    """One page on its way: its alert, the time, and what the stages did to it so far."""

    alert: Alert
    now: datetime
    page_id: int | None = None  # None until the page is queued
    jobs: dict[str, Job] = field(default_factory=dict)  # channel name → its claimed delivery
    outcomes: list[Outcome] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # channels added while sending, not yet run

    @property
    def what(self) -> str:
        """How log lines name the page."""
        return f"incident #{self.alert.incident_id} {self.alert.kind}"

    def queued(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self.page_id = job.page_id
            self.jobs[job.channel] = job


class Stage(Protocol):
    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        """The channels that go on to the next stage."""
        ...


class MultiStage:
    """Stages in order; stops as soon as one leaves no channel."""

    def __init__(self, *stages: Stage):
        self.stages = stages

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        for stage in self.stages:
            if not channels:
                break
            channels = stage.exec(ctx, channels)
        return channels


class FanoutStage:
    """``stage`` for each channel on its own — then for each fallback channel a failure added.

    A channel's run holds that channel's lock, so a rate limit and its send are one step among
    threads of this process (other processes are kept apart by the claims).
    """

    def __init__(self, stage: Stage, channel_names: Sequence[str]):
        self.stage = stage
        self._locks = {name: threading.Lock() for name in channel_names}

    def exec(self, ctx: Context, channels: list[str]) -> list[str]:
        passed: list[str] = []
        work = deque(channels)
        while work:
            name = work.popleft()
            with self._locks.get(name) or nullcontext():
                passed += self.stage.exec(ctx, [name])
            work.extend(ctx.fallbacks)
            ctx.fallbacks.clear()
        return passed
