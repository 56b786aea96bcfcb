"""The message-independent description of one notification."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from alerts.severity import Severity
from monitor.domain import Mention

# firing: a new incident; escalated: its severity grew; reminder: still unacknowledged (next
# escalation step); reopened: it flared up again soon after being resolved; resolved: 已恢复.
AlertKind = Literal["firing", "escalated", "reminder", "reopened", "resolved"]


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    incident_id: int
    severity: Severity
    topic: str
    rule: str
    title: str
    reason: str
    at: datetime
    numbers: dict[str, Any] = field(default_factory=dict)
    top_mentions: tuple[Mention, ...] = ()
    ack_command: str = ""
    tz: str = "Asia/Shanghai"  # for times shown to people
    channels: tuple[str, ...] | None = None  # deliver only to these channels (escalation steps); None = all
    plan_steps: tuple[str, ...] = ()  # the response plan's first steps, ready to show

    @property
    def dedup_key(self) -> str:
        return f"incident-{self.incident_id}-{self.kind}-{self.severity.value}"
