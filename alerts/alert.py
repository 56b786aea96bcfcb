"""The message-independent description of one notification."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.core.severity import Severity
from monitor.core.domain import Mention

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
    # Tells apart pages of one incident that share kind and severity (a reminder's escalation
    # step and round, a reopening's count), so the notification log can dedup by ``dedup_key``.
    occurrence: str = ""
    # The incident's page in the web console (``console.public_url`` + ``/incidents/<id>``), or None
    # when no console is configured: the pages then carry the CLI hint only, exactly as before.
    console_url: str | None = None
    # 主要诉求 / 舆情热度 / 最大传播 (alerts.crisis_summary.CrisisSummary in its JSON form), None: not known
    summary: dict[str, Any] | None = None
    # The page row stored with the incident change that made this alert (same transaction), so a
    # crash before it is queued loses nothing (Notifier.run_due picks it up); not part of the page.
    outbox_id: int | None = None

    @property
    def ack_url(self) -> str | None:
        """The incident page with its 确认 button ready (``?ack=1``). Opening it changes nothing: the
        acknowledgement itself is a POST from a logged-in session, never an action link."""
        if self.console_url is None or self.kind == "resolved":
            return None
        return f"{self.console_url}?ack=1"

    @property
    def dedup_key(self) -> str:
        key = f"incident-{self.incident_id}-{self.kind}-{self.severity.value}"
        return f"{key}-{self.occurrence}" if self.occurrence else key


def incident_url(public_url: str | None, incident_id: int) -> str | None:
    """The console page of incident ``incident_id`` — built from the config and the integer id only,
    so no text from a mention or a topic ever ends up in a link."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/incidents/{int(incident_id)}"
