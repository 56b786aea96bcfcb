"""source_health (数据源异常): a source that fails or goes quiet is an incident too.

A monitor's worst failure is a silent gap. One instance watches one source and
is fed every poll outcome (:meth:`SourceHealthRule.observe_poll`) and the
passing time (:meth:`tick`). It fires when

- the source failed ``failures`` polls in a row (HTTP errors, bad payloads,
  rejected pushes …), or
- it is **stale**: no new item stored for longer than the source's
  ``expect_every`` (sources without ``expect_every`` are never stale);

and recovers (``recovered`` → the incident auto-resolves with 已恢复) as soon as
neither holds. One incident per source for the whole outage, however long and
whichever of the two conditions comes and goes.

The rule is on for every source by default: when the config has no
``source_health`` rule the engine adds ``{name: 数据源异常, type: source_health}``.
Whether a source is failing or stale is decided by :func:`sources.health.assess`, the function
``monitor sources`` and ``monitor status`` show too. Pure state machine: times are passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.measurements import SourceHealthMeasurement
from monitor.core.severity import Severity
from monitor.core.configtypes import format_duration
from monitor.core.domain import Mention
from sources.health import DEFAULT_FAILURES, Polls, SourceHealth, assess

DEFAULT_NAME = "数据源异常"


class SourceHealthConfig(RuleConfig):
    type: Literal["source_health"]
    sources: tuple[str, ...] | None = None  # None: every source
    failures: int = Field(default=DEFAULT_FAILURES, ge=1)  # consecutive failed polls that make an incident
    severity: Severity = Severity.III


def default_config() -> SourceHealthConfig:
    return SourceHealthConfig(name=DEFAULT_NAME, type="source_health")


def failure_threshold(rules: Iterable[Any], source: str) -> int:
    """The ``failures`` setting of the ``source_health`` rule watching ``source`` (the lowest if several
    do) — what front ends call failing. Without one (no rule configured, so the default rule watches
    every source; or the configured ones skip this source) the default."""
    counts = [r.failures for r in rules if isinstance(r, SourceHealthConfig) and (not r.sources or source in r.sources)]
    return min(counts, default=DEFAULT_FAILURES)


class SourceHealthRule(Rule):
    """Watches one source (its name is the rule's ``topic``)."""

    config_model = SourceHealthConfig
    config: SourceHealthConfig
    scope = "source"

    def __init__(self, config: SourceHealthConfig, topic: str, started_at: datetime, *,
                 expect_every: timedelta | None = None):
        super().__init__(config, topic, started_at)
        self.expect_every = expect_every
        self.failures = 0
        self.last_error: str | None = None
        self.last_success_at: datetime | None = None
        self.last_item_at: datetime | None = None
        self.since = started_at  # staleness counts from here until a first item
        self.firing = False

    @property
    def source(self) -> str:
        return self.topic

    # -- input -----------------------------------------------------------------------
    def observe_poll(self, ok: bool, error: str | None, stored: int, now: datetime) -> list[Match]:
        if ok:
            self.failures, self.last_error, self.last_success_at = 0, None, now
            if stored:
                self.last_item_at = now
        else:
            self.failures += 1
            self.last_error = error or "unknown error"
        return self._evaluate(now)

    def restore(self, *, failures: int, last_error: str | None, last_success_at: datetime | None,
                last_item_at: datetime | None, first_poll_at: datetime | None) -> None:
        """Seed the state from the stored source state after a restart (no evaluation)."""
        self.failures, self.last_error = failures, last_error
        self.last_success_at, self.last_item_at = last_success_at, last_item_at
        if first_poll_at is not None:
            self.since = min(self.since, first_poll_at)

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        return self._evaluate(now)

    # -- evaluation --------------------------------------------------------------------
    def health(self, now: datetime) -> SourceHealth:
        """:func:`sources.health.assess` over what this rule has seen (staleness counts from its start
        or the stored first poll, whichever is earlier)."""
        return assess(Polls(self.failures, self.last_item_at, self.since), expect_every=self.expect_every, now=now,
                      threshold=self.config.failures)

    def stale_for(self, now: datetime) -> timedelta:
        return self.health(now).stale_for or timedelta(0)

    def _evaluate(self, now: datetime) -> list[Match]:
        health = self.health(now)
        if health.alerting and not self.firing:
            self.firing = True
            return [self._match("firing", now, self._reason(health))]
        if not health.alerting and self.firing:
            self.firing = False
            got = "收到新数据" if self.expect_every is not None and self.last_item_at == now else "抓取恢复正常"
            return [self._match("recovered", now, f"数据源「{self.source}」已恢复：{got}")]
        return []

    def _reason(self, health: SourceHealth) -> str:
        parts = []
        if health.failing:
            parts.append(f"连续 {self.failures} 次抓取失败（{self.last_error}）")
        if health.stale:
            parts.append(f"已 {format_duration(_whole(health.stale_for))} 没有新数据"
                         f"（预期至少每 {format_duration(self.expect_every)} 一条）")
        return f"数据源「{self.source}」" + "，".join(parts) + "，舆情监测可能存在盲区"

    def measure(self, now: datetime) -> SourceHealthMeasurement:
        return SourceHealthMeasurement(
            source=self.source,
            consecutive_failures=self.failures,
            failure_threshold=self.config.failures,
            last_error=self.last_error,
            stale_for=_whole(self.stale_for(now)),
            expect_every=self.expect_every or None,
            last_success_at=self.last_success_at,
            last_item_at=self.last_item_at,
        )

    def _match(self, kind: Literal["firing", "recovered"], now: datetime, reason: str) -> Match:
        return Match(kind, self.config.name, self.config.type, self.source, now, self.config.severity, reason,
                     self.measure(now), scope="source")


def _whole(td: timedelta) -> timedelta:
    return timedelta(seconds=int(td.total_seconds()))
