"""Small builders for test values (aware-UTC times, unique ids)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from alerts.alert import Alert
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.core.domain import Mention

T0 = datetime(2024, 6, 11, 4, 0, 0, tzinfo=timezone.utc)  # 12:00 in Asia/Shanghai
TOPIC = "品牌A"

_ids = itertools.count(1)


def make_mention(**overrides: Any) -> Mention:
    """A scored negative mention on :data:`TOPIC` published at :data:`T0`, unless overridden."""
    n = next(_ids)
    text = overrides.pop("text", f"第{n}条：产品质量太差了，客服也不理人")
    published_at = overrides.pop("published_at", T0)
    values: dict[str, Any] = {
        "source": "weibo",
        "external_id": f"ext-{n}",
        "text": text,
        "raw_text": text,
        "published_at": published_at,
        "fetched_at": published_at + timedelta(seconds=5),
        "content_hash": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "url": f"https://weibo.com/123/{n}",
        "author": f"user{n}",
        "score": 0.1,
        "label": "negative",
        "model_version": "test-1",
        "topics": (TOPIC,),
    }
    values.update(overrides)
    for key in ("published_at", "fetched_at"):
        assert values[key].tzinfo is not None, f"{key} must be timezone-aware"
    return Mention(**values)


def negatives(count: int, at: datetime, **overrides: Any) -> list[Mention]:
    return [make_mention(published_at=at, **overrides) for _ in range(count)]


def make_match(**overrides: Any) -> Match:
    """A firing negative_spike match for :data:`TOPIC`."""
    values: dict[str, Any] = {
        "kind": "firing",
        "rule": "负面激增",
        "rule_type": "negative_spike",
        "topic": TOPIC,
        "at": T0,
        "severity": Severity.IV,
        "reason": "「品牌A」负面声量激增：近10m负面 12 条",
        "measurement": {"current_negative": 12, "ratio": 36.0, "window": "10m"},
        "evidence": (),
    }
    values.update(overrides)
    if "numbers" in values:  # a plain dict, kept as it is (Figures)
        values["measurement"] = values.pop("numbers")
    return Match(**values)


def make_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "kind": "firing",
        "incident_id": 7,
        "severity": Severity.IV,
        "topic": TOPIC,
        "rule": "负面激增",
        "title": f"「{TOPIC}」负面激增",
        "reason": "「品牌A」负面声量激增：近10m负面 12 条（占 80%），基准约 0.33 条，为基准的 36 倍",
        "at": T0,
        "numbers": {"current_negative": 12, "current_total": 15, "negative_share": 0.8,
                    "reference_negative": 0, "expected": 0.33, "ratio": 36.36,
                    "window": "10m", "reference": "1h"},
        "top_mentions": (),
        "ack_command": "monitor incidents ack 7",
        "tz": "Asia/Shanghai",
    }
    values.update(overrides)
    return Alert(**values)


def with_id(mention: Mention, id: int) -> Mention:
    return replace(mention, id=id)


def with_crisis_words(mention: Mention, *words: str) -> Mention:
    """``mention`` carrying NLP crisis words (``Mention.crisis_words``; a subclass until the field exists)."""
    from dataclasses import field as dc_field, fields, make_dataclass

    names = [f.name for f in fields(Mention)]
    if "crisis_words" in names:
        return replace(mention, crisis_words=tuple(words))
    cls = make_dataclass("CrisisMention", [("crisis_words", tuple, dc_field(default=()))], bases=(Mention,), frozen=True)
    return cls(**{n: getattr(mention, n) for n in names}, crisis_words=tuple(words))


def unstaged(db, alert):
    """An incident's alert as the notifier's tests vary it (kind, severity, occurrence): without the
    page its incident change staged (dropped here; the outbox itself is tested in test_outbox.py)."""
    from dataclasses import replace

    from monitor.storage import deliveries

    if alert.outbox_id is not None:
        with db.session() as s:
            deliveries.drop_unqueued(s, alert.outbox_id)
    return replace(alert, outbox_id=None)
