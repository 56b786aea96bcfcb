"""The rule plugin interface.

A rule instance watches one topic. It is a pure state machine: the engine feeds
it scored mentions together with the current time, and it answers with
:class:`Match` objects when its state changes (starts firing, gets worse,
recovers). It never reads a clock, a database or the network, so tests drive
it with plain values.

Adding a rule type: one module with a ``*Config`` (``type: Literal["name"]``)
and a :class:`Rule` subclass, plus one line in :mod:`alerts.rules.registry`; its
figures get a record in :mod:`alerts.rules.measurements` (a plugin may pass a
plain dict instead, kept as ``Figures``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Literal, Mapping, Sequence

from alerts.rules.measurements import Figures, Measurement
from monitor.core.severity import Severity
from monitor.core.configtypes import PluginConfig
from monitor.core.domain import Mention


FOREVER = datetime.max.replace(tzinfo=timezone.utc)  # idle_until: nothing changes without new data


class RuleConfig(PluginConfig):
    topics: tuple[str, ...] | None = None  # None: every configured topic
    plan: str | None = None  # response plan to attach; None: the plan configured for the severity
    # Only mentions from these sources / platforms (Mention.platform) reach the rule; None: all.
    sources: tuple[str, ...] | None = None
    platforms: tuple[str, ...] | None = None

    def accepts(self, mention: Mention) -> bool:
        """Whether ``mention`` passes this rule's source and platform restriction."""
        if self.sources and mention.source not in self.sources:
            return False
        if self.platforms and getattr(mention, "platform", None) not in self.platforms:
            return False
        return True

    def problems(self) -> list[str]:
        """Field-level problems that need more than one field to see (``"field: why"``)."""
        return []


@dataclass(frozen=True)
class Match:
    """A change in a rule's state for one topic.

    ``kind`` is ``"firing"`` (the condition started or got worse) or
    ``"recovered"`` (back to baseline). ``measurement`` holds the figures that
    decided it (current vs baseline …, :mod:`alerts.rules.measurements`);
    ``evidence`` the most telling mentions.
    """

    kind: Literal["firing", "recovered"]
    rule: str
    rule_type: str
    topic: str
    at: datetime
    severity: Severity
    reason: str  # one Chinese sentence: what fired and why
    # A plain dict is accepted too and kept as it is (Figures): hand-built matches in tests, and
    # plugin rule types that have no record of their own.
    measurement: Measurement = field(default_factory=Figures)
    evidence: tuple[Mention, ...] = ()
    # "topic": about a topic (grouped into one incident per crisis); "source": about a source (source health)
    scope: Literal["topic", "source"] = "topic"

    def __post_init__(self) -> None:
        if isinstance(self.measurement, Mapping):
            object.__setattr__(self, "measurement", Figures(values=dict(self.measurement)))

    @property
    def numbers(self) -> dict[str, Any]:
        """The figures as stored and shown (``incidents.numbers``, pages, the webhook payload)."""
        return self.measurement.as_numbers()

    @property
    def group_key(self) -> str:
        return f"{self.topic}|{self.rule}"


class Rule(ABC):
    config_model: ClassVar[type[RuleConfig]]

    def __init__(self, config: RuleConfig, topic: str, started_at: datetime):
        self.config = config
        self.topic = topic
        self.started_at = started_at

    @abstractmethod
    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        """Take this topic's new mentions, evaluate at ``now``, return state changes."""

    def history_needed(self) -> timedelta:
        """How much stored history a fresh instance needs after a restart."""
        return timedelta(0)

    def mentions_needed(self) -> timedelta:
        """How much of :meth:`history_needed` must be replayed as mentions; the rest comes as counts."""
        return self.history_needed()

    def counts_needed(self) -> timedelta:
        """How far back :meth:`add_count` wants per-minute counts (0: the rule takes none)."""
        return timedelta(0)

    def add_count(self, minute: datetime, platform: str | None, negative: int, total: int,
                  heat: float | None = None) -> None:
        """Take a stored per-minute count (warm-up, older than the mentions replayed; ``heat``: the
        negatives' summed 舆情热度); no evaluation."""

    def idle_until(self) -> datetime | None:
        """Until when an evaluation without new data cannot change the rule's decision (None: it may
        at any time). The engine then calls :meth:`touch` instead, so a poll costs the rules of the
        topics it brought data for, and a rule's timers (a window edge, a bucket boundary, a recovery
        delay) still fire on time. Must be conservative."""
        return None

    def touch(self, now: datetime) -> None:
        """The bookkeeping of an evaluation at ``now`` that :meth:`idle_until` said changes nothing
        (a condition that still holds moves the recovery clock, exactly as if evaluated)."""

    def tick(self, now: datetime) -> list[Match]:
        """Evaluate with no new data (time passing can end or start a condition)."""
        return self.add_data((), now)
