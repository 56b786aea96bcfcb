"""Prometheus metrics and health for the daemon's HTTP listener (``/metrics``, ``/healthz``).

Process counters (polls, mentions, scoring time, rule evaluations) live in a
per-daemon :class:`Metrics` registry; incident and delivery figures are read
from the database at scrape time, so they survive restarts and agree with
``monitor incidents`` and the notifications table.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from monitor.storage import Database, history, repo
from monitor.storage import incidents as incident_store

NAMESPACE = "yuqing"


class _DatabaseCollector:
    def __init__(self, db: Database):
        self.db = db

    def describe(self) -> Iterable:  # no eager collect at registration time
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        incidents = GaugeMetricFamily(f"{NAMESPACE}_incidents", "Incidents by severity and status",
                                      labels=["severity", "status"])
        deliveries = GaugeMetricFamily(f"{NAMESPACE}_notifications", "Notification attempts by channel and status "
                                       "(sent, failed, pending, silenced …), from the delivery log",
                                       labels=["channel", "status"])
        failing = GaugeMetricFamily(f"{NAMESPACE}_source_consecutive_failures",
                                    "Consecutive failed polls per source", labels=["source"])
        with self.db.session() as s:
            for (severity, status), n in incident_store.counts(s).items():
                incidents.add_metric([severity, status], n)
            for channel, status, n in history.notification_counts(s):
                deliveries.add_metric([channel, status], n)
            for st in repo.source_states(s):
                failing.add_metric([st.name], st.consecutive_failures or 0)
        return [incidents, deliveries, failing]


class Metrics:
    def __init__(self, db: Database | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(f"{NAMESPACE}_polls", "Source polls by outcome (ok, not_modified, failed)",
                             ["source", "outcome"], registry=r)
        self.fetched = Counter(f"{NAMESPACE}_mentions_fetched", "Items fetched per source", ["source"], registry=r)
        self.stored = Counter(f"{NAMESPACE}_mentions_stored", "New mentions stored per source", ["source"], registry=r)
        self.source_failures = Counter(f"{NAMESPACE}_source_failures", "Failed polls per source", ["source"],
                                       registry=r)
        self.scoring = Histogram(f"{NAMESPACE}_scoring_seconds", "Time to score one poll's new mentions",
                                 buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 2, 10), registry=r)
        self.rule_evaluations = Counter(f"{NAMESPACE}_rule_evaluations", "Rule engine evaluations", registry=r)
        self.alerts = Counter(f"{NAMESPACE}_alerts", "Alerts raised by kind and severity", ["kind", "severity"],
                              registry=r)
        if db is not None:
            r.register(_DatabaseCollector(db))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def health(*, now: datetime, lease_held: bool, overdue: dict, started_at: datetime | None) -> tuple[int, bytes]:
    """``/healthz``: 200 when the daemon holds its lease and polls on time, else 503 with the reason."""
    problems = []
    if not lease_held:
        problems.append("lost the database lease")
    if overdue:
        problems.append("polling stalled: " + ", ".join(f"{n} {int(d.total_seconds())}s" for n, d in sorted(overdue.items())))
    doc = {"status": "ok" if not problems else "unhealthy", "problems": problems, "time": now.isoformat(),
           "started_at": started_at.isoformat() if started_at else None}
    return (200 if not problems else 503), json.dumps(doc, ensure_ascii=False).encode("utf-8")


