"""Alerts in and out of the persistent delivery queue (:mod:`monitor.storage.deliveries`).

A page is stored as the alert's JSON (:func:`alert_to_json`) and read back for every retry
(:func:`alert_from_json`); :class:`Outcome` is what one attempt at a delivery came to. The queue
itself — pages, deliveries, the notification log — lives in the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal

from alerts.alert import Alert
from monitor.core.domain import Mention
from monitor.core.severity import Severity
from monitor.storage.deliveries import Job

__all__ = ["Outcome", "alert_from_json", "alert_to_json"]


# -- alerts as JSON ------------------------------------------------------------------------
def _mention_to_json(m: Mention) -> dict:
    data = asdict(m)
    for key in ("published_at", "fetched_at"):
        data[key] = data[key].isoformat()
    data["topics"] = list(m.topics)
    return data


def _mention_from_json(data: dict) -> Mention:
    known = {f.name for f in fields(Mention)}
    # JSON has no tuples: every sequence field of Mention (topics, crisis_words, duplicate_of) comes back a list
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    for key in ("published_at", "fetched_at"):
        values[key] = datetime.fromisoformat(values[key])
    values["topics"] = tuple(values.get("topics") or ())
    return Mention(**values)


mention_to_json, mention_from_json = _mention_to_json, _mention_from_json  # also a hot list's stored snapshot


def alert_to_json(alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(Alert):
        if f.name == "outbox_id":
            continue
        value = getattr(alert, f.name)
        if f.name == "severity":
            value = value.value
        elif f.name == "at":
            value = value.isoformat()
        elif f.name == "top_mentions":
            value = [_mention_to_json(m) for m in value]
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def alert_from_json(data: dict[str, Any]) -> Alert:
    """The inverse of :func:`alert_to_json`; keys of fields that no longer exist are ignored."""
    values: dict[str, Any] = {}
    for f in fields(Alert):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "severity":
            value = Severity(value)
        elif f.name == "at":
            value = datetime.fromisoformat(value)
        elif f.name == "top_mentions":
            value = tuple(_mention_from_json(m) for m in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return Alert(**values)


# -- attempts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    job: Job
    # sent / failed: an attempt was made; deferred: due again at ``retry_at`` (rate limit, quiet
    # hours); silenced / deduplicated: held back from the channel for good, not an attempt.
    status: Literal["sent", "failed", "deferred", "silenced", "deduplicated"]
    attempt: int = 0
    error: str | None = None
    retry_at: datetime | None = None  # failed: the next attempt (None: gave up); deferred: when allowed

    @property
    def gave_up(self) -> bool:
        return self.status == "failed" and self.retry_at is None

    @property
    def label(self) -> str:
        """How the channel is named on the timeline."""
        if self.job.fallback_for:
            return f"{self.job.channel}（备用，替代{self.job.fallback_for}）"
        return self.job.channel if self.attempt <= 1 else f"{self.job.channel}（第{self.attempt}次尝试）"
