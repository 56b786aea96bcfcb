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
Pure state machine: times are passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from monitor.core.severity import Severity
from monitor.core.configtypes import format_duration
from monitor.core.domain import Mention

DEFAULT_NAME = "数据源异常"


class SourceHealthConfig(RuleConfig):
    type: Literal["source_health"]
    sources: tuple[str, ...] | None = None  # None: every source
    failures: int = Field(default=3, ge=1)  # consecutive failed polls that make an incident
    severity: Severity = Severity.III


def default_config() -> SourceHealthConfig:
    return SourceHealthConfig(name=DEFAULT_NAME, type="source_health")


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
    def stale_for(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - (self.last_item_at or self.since))

    def is_failing(self) -> bool:
        return self.failures >= self.config.failures

    def is_stale(self, now: datetime) -> bool:
        return self.expect_every is not None and self.stale_for(now) > self.expect_every

    def _evaluate(self, now: datetime) -> list[Match]:
        failing, stale = self.is_failing(), self.is_stale(now)
        if (failing or stale) and not self.firing:
            self.firing = True
            return [self._match("firing", now, self._reason(now, failing, stale))]
        if not (failing or stale) and self.firing:
            self.firing = False
            got = "收到新数据" if self.expect_every is not None and self.last_item_at == now else "抓取恢复正常"
            return [self._match("recovered", now, f"数据源「{self.source}」已恢复：{got}")]
        return []

    def _reason(self, now: datetime, failing: bool, stale: bool) -> str:
        parts = []
        if failing:
            parts.append(f"连续 {self.failures} 次抓取失败（{self.last_error}）")
        if stale:
            parts.append(f"已 {format_duration(_whole(self.stale_for(now)))} 没有新数据"
                         f"（预期至少每 {format_duration(self.expect_every)} 一条）")
        return f"数据源「{self.source}」" + "，".join(parts) + "，舆情监测可能存在盲区"

    def numbers(self, now: datetime) -> dict[str, Any]:
        return {
            "source": self.source,
            "consecutive_failures": self.failures,
            "failure_threshold": self.config.failures,
            "last_error": self.last_error,
            "stale_for": format_duration(_whole(self.stale_for(now))),
            "expect_every": format_duration(self.expect_every) if self.expect_every else None,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "last_item_at": self.last_item_at.isoformat() if self.last_item_at else None,
        }

    def _match(self, kind: Literal["firing", "recovered"], now: datetime, reason: str) -> Match:
        return Match(kind, self.config.name, self.config.type, self.source, now, self.config.severity, reason,
                     self.numbers(now))


def _whole(td: timedelta) -> timedelta:
    return timedelta(seconds=int(td.total_seconds()))
