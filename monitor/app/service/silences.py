"""Silences: hold back pages for a topic / rule / severity for a while (they are still recorded).

A silence's matcher has the keys ``topic``, ``rule`` and ``severity`` (each optional, at least
one); every key given must equal the alert's value (:func:`alerts.notify.silence_matches`).
Rows live in :mod:`monitor.storage.silences`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from monitor.app.service.context import Context, duration, local_time
from monitor.core.errors import UsageError
from monitor.core.severity import Severity
from monitor.storage import silences as store
from monitor.storage.silences import Silence

__all__ = ["Added", "Silence", "add", "describe", "expire", "listing", "make_matcher", "parse_until"]


@dataclass(frozen=True)
class Added:
    silence: Silence
    warnings: list[str]  # e.g. a topic the config does not know: silenced exactly as typed


def make_matcher(topic: str | None, rule: str | None, severity: str | None) -> dict[str, str]:
    matcher = {k: v.strip() for k, v in (("topic", topic), ("rule", rule), ("severity", severity)) if v and v.strip()}
    if not matcher:
        raise UsageError("a silence needs at least one of --topic, --rule, --severity (it would match nothing)")
    if "severity" in matcher:
        value = matcher["severity"].upper()
        if value not in {s.value for s in Severity}:
            raise UsageError(f"--severity: expected one of I, II, III, IV, got {matcher['severity']!r}")
        matcher["severity"] = value
    return matcher


def parse_until(value: str, tz: str, now: datetime) -> datetime:
    """``2026-03-15 18:00`` / ``2026-03-15T18:00+08:00`` in ``tz`` → aware UTC; ``09:00`` is the next 09:00."""
    zone = ZoneInfo(tz)
    text = value.strip()
    try:
        if len(text) <= 5 and ":" in text:  # HH:MM: the next time the clock shows it
            hour, minute = (int(p) for p in text.split(":"))
            at = now.astimezone(zone).replace(hour=hour, minute=minute, second=0, microsecond=0)
            if at <= now:
                at = (at.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
        else:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=zone)
    except ValueError:
        raise UsageError(f'--until: expected a time like "2026-03-15 18:00" or "18:00", got {value!r}') from None
    return at.astimezone(timezone.utc)


def ends_at(for_: str | None, until: str | None, tz: str, now: datetime) -> datetime:
    """When a silence starting ``now`` ends: exactly one of ``for_`` (a duration) or ``until`` (a time in ``tz``)."""
    if (for_ is None) == (until is None):
        raise UsageError('say how long, with exactly one of --for "2h" or --until "2026-03-15 18:00"')
    if until is not None:
        return parse_until(until, tz, now)
    length = duration(for_, "--for")
    if length <= timedelta(0):
        raise UsageError(f"--for: expected a positive duration, got {for_!r}")
    return now + length


def add(ctx: Context, *, topic: str | None = None, rule: str | None = None, severity: str | None = None,
        for_: str | None = None, until: str | None = None, reason: str, actor: str, now: datetime) -> Added:
    """Silence matching pages from ``now`` for ``for_`` or until ``until``; ``reason`` is required."""
    matcher = make_matcher(topic, rule, severity)
    end = ends_at(for_, until, ctx.tz, now)
    if end <= now:
        raise UsageError(f"the silence would end in the past ({end.isoformat()}); nothing to silence")
    if not reason.strip():
        raise UsageError("a silence needs --reason (it shows on every page it holds back)")
    warnings = []
    for key, known in (("topic", [t.name for t in ctx.config.topics]), ("rule", [r.name for r in ctx.config.rules])):
        if key in matcher and known and matcher[key] not in known:
            warnings.append(f"{key} {matcher[key]!r} is not in the config ({', '.join(known)}); "
                            f"the silence matches it exactly")
    with ctx.db.session() as s:
        silence = store.add(s, matcher, now, end, reason.strip(), actor, now)
    return Added(silence, warnings)


def listing(ctx: Context, now: datetime, *, include_expired: bool = False) -> list[Silence]:
    """Silences not yet over at ``now`` (with ``include_expired`` all of them), latest ending first."""
    with ctx.db.session() as s:
        return store.listing(s, now, include_expired=include_expired)


def expire(ctx: Context, silence_id: int, now: datetime) -> Silence:
    """End a silence at ``now``: matching pages go out again."""
    with ctx.db.session() as s:
        silence = store.get(s, silence_id)
        if silence is None:
            raise UsageError(f"no silence #{silence_id}")
        if silence.ends_at <= now:
            raise UsageError(f"silence #{silence_id} already expired at {local_time(silence.ends_at, ctx.tz)}")
        return store.end(s, silence_id, now)


def describe(matcher: dict) -> str:
    return " ".join(f"{k}={matcher[k]}" for k in ("topic", "rule", "severity") if k in matcher) or "(nothing)"
