"""The watchdog: notices when the scheduler stops polling, and pages about it.

It is fed the time each source's poll started and checked by the supervisor
thread (not by the scheduler it watches). A source whose poll is overdue by
``factor`` × its interval (at least ``min_overdue``) makes the scheduler count
as stalled: one 调度器停止 incident, recovered when polling resumes.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from alerts.rules.base import Match
from alerts.rules.measurements import WatchdogMeasurement
from monitor.core.severity import Severity

RULE = "调度器看门狗"
TOPIC = "系统"


class Watchdog:
    def __init__(self, *, factor: float = 3.0, min_overdue: timedelta = timedelta(seconds=60)):
        self.factor = factor
        self.min_overdue = min_overdue
        self._lock = threading.Lock()
        self._intervals: dict[str, timedelta] = {}
        self._last: dict[str, datetime] = {}
        self._stalled = False

    def expect(self, intervals: dict[str, timedelta], now: datetime) -> None:
        """(Re)start watching these sources; each gets a full allowance from ``now``."""
        with self._lock:
            self._intervals = dict(intervals)
            self._last = {name: now for name in intervals}

    def polled(self, name: str, now: datetime) -> None:
        with self._lock:
            self._last[name] = now

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return {name: at.isoformat() for name, at in self._last.items()}

    def overdue(self, now: datetime) -> dict[str, timedelta]:
        with self._lock:
            late = {}
            for name, interval in self._intervals.items():
                allowance = max(interval * self.factor, self.min_overdue)
                since = now - self._last.get(name, now)
                if since > allowance:
                    late[name] = since
            return late

    def check(self, now: datetime) -> list[Match]:
        """A firing match when polling stalls, a recovered match when it resumes, else nothing."""
        late = self.overdue(now)
        if late and not self._stalled:
            self._stalled = True
            worst = max(late.values())
            names = "、".join(sorted(late))
            reason = f"调度器已 {int(worst.total_seconds())} 秒未轮询数据源：{names}，舆情监测可能中断"
            overdue = tuple((n, timedelta(seconds=int(d.total_seconds()))) for n, d in late.items())
            return [Match("firing", RULE, "watchdog", TOPIC, now, Severity.II, reason,
                          WatchdogMeasurement(overdue=overdue))]
        if not late and self._stalled:
            self._stalled = False
            return [Match("recovered", RULE, "watchdog", TOPIC, now, Severity.II, "调度器已恢复轮询",
                          WatchdogMeasurement())]
        return []
