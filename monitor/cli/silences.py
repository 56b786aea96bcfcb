"""`monitor silences add|list|expire`: mute pages for a topic / rule / severity for a while.

A silence's matcher has the keys ``topic``, ``rule`` and ``severity`` (each
optional, at least one); every key given must equal the alert's value
(:func:`alerts.notify.silence_matches`). Silenced pages are still recorded.
Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy import select

from monitor.core.severity import Severity
from monitor.cli.main import ConfigOpt, _actor, _config, _db, _local, _now, app, cli_errors, err, out
from monitor.core.configtypes import parse_duration
from monitor.core.errors import UsageError
from monitor.storage import Database
from monitor.storage.models import SilenceRow

silences_app = typer.Typer(help="Silence pages for a topic, rule or severity for a while.", no_args_is_help=True)
app.add_typer(silences_app, name="silences")


# -- library -------------------------------------------------------------------------
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


def add_silence(db: Database, matcher: dict[str, str], ends_at: datetime, reason: str, actor: str,
                now: datetime) -> SilenceRow:
    if ends_at <= now:
        raise UsageError(f"the silence would end in the past ({ends_at.isoformat()}); nothing to silence")
    if not reason.strip():
        raise UsageError("a silence needs --reason (it shows on every page it holds back)")
    with db.session() as s:
        row = SilenceRow(matcher=matcher, starts_at=now, ends_at=ends_at, reason=reason.strip(), created_by=actor,
                         created_at=now)
        s.add(row)
        s.flush()
        return row


def list_silences(db: Database, now: datetime, *, include_expired: bool = False) -> list[SilenceRow]:
    with db.session() as s:
        stmt = select(SilenceRow).order_by(SilenceRow.ends_at.desc(), SilenceRow.id.desc())
        if not include_expired:
            stmt = stmt.where(SilenceRow.ends_at > now)
        return list(s.scalars(stmt))


def expire_silence(db: Database, silence_id: int, now: datetime, tz: str) -> SilenceRow:
    with db.session() as s:
        row = s.get(SilenceRow, silence_id)
        if row is None:
            raise UsageError(f"no silence #{silence_id}")
        if row.ends_at <= now:
            raise UsageError(f"silence #{silence_id} already expired at {_local(row.ends_at, tz)}")
        row.ends_at, row.starts_at = now, min(row.starts_at, now)
        return row


def state(row: SilenceRow, now: datetime) -> str:
    return "expired" if row.ends_at <= now else ("pending" if row.starts_at > now else "active")


def _short(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")


def describe(matcher: dict) -> str:
    return " ".join(f"{k}={matcher[k]}" for k in ("topic", "rule", "severity") if k in matcher) or "(nothing)"


# -- commands ------------------------------------------------------------------------
@silences_app.command("add")
@cli_errors
def add(config: Optional[Path] = ConfigOpt,
        topic: Optional[str] = typer.Option(None, "--topic", help="Only alerts on this topic."),
        rule: Optional[str] = typer.Option(None, "--rule", help="Only alerts from this rule."),
        severity: Optional[str] = typer.Option(None, "--severity", help="Only alerts of this severity (I–IV)."),
        for_: Optional[str] = typer.Option(None, "--for", help='How long, e.g. "2h".'),
        until: Optional[str] = typer.Option(None, "--until", help='Until when: "2026-03-15 18:00", or "09:00" for the next 09:00 (config timezone).'),
        reason: str = typer.Option("", "--reason", help="Why (shown on the pages it holds back)."),
        actor: Optional[str] = typer.Option(None, "--as", help="Who silences (default: OS user).")) -> None:
    """Silence matching pages from now for --for DURATION or --until TIME."""
    cfg = _config(config)
    matcher = make_matcher(topic, rule, severity)
    now = _now()
    if (for_ is None) == (until is None):
        raise UsageError('say how long, with exactly one of --for "2h" or --until "2026-03-15 18:00"')
    if for_ is not None:
        try:
            length = parse_duration(for_)
        except Exception:
            raise UsageError(f'--for: expected a duration like "2h", got {for_!r}') from None
        if length <= timedelta(0):
            raise UsageError(f"--for: expected a positive duration, got {for_!r}")
        ends_at = now + length
    else:
        ends_at = parse_until(until, cfg.timezone, now)
    for key, known in (("topic", [t.name for t in cfg.topics]), ("rule", [r.name for r in cfg.rules])):
        if key in matcher and known and matcher[key] not in known:
            err.print(f"[yellow]warning:[/yellow] {key} {matcher[key]!r} is not in the config "
                      f"({', '.join(known)}); the silence matches it exactly", highlight=False)
    row = add_silence(_db(config), matcher, ends_at, reason, _actor(actor), now)
    typer.echo(f"silence #{row.id}: {describe(row.matcher)} until {_local(row.ends_at, cfg.timezone)} "
               f"({cfg.timezone}) — {row.reason}")


@silences_app.command("list")
@cli_errors
def list_(config: Optional[Path] = ConfigOpt,
          all_: bool = typer.Option(False, "--all", help="Include expired silences."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List active silences (with --all: expired ones too), latest ending first."""
    cfg = _config(config)
    now = _now()
    rows = list_silences(_db(config), now, include_expired=all_)
    if as_json:
        print(json.dumps([{"id": r.id, "matcher": r.matcher, "state": state(r, now),
                           "starts_at": r.starts_at.isoformat(), "ends_at": r.ends_at.isoformat(),
                           "reason": r.reason, "created_by": r.created_by, "created_at": r.created_at.isoformat()}
                          for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no silences" if all_ else "no active silences")
        return
    table = Table(title="静默 silences")
    for col in ("#", "匹配", "状态", "开始", "结束", "创建人", "原因"):
        table.add_column(col, overflow="fold", no_wrap=col in {"#", "状态", "开始", "结束"})
    labels = {"active": "[green]生效中[/]", "pending": "[cyan]未开始[/]", "expired": "[dim]已过期[/]"}
    for r in rows:
        table.add_row(str(r.id), describe(r.matcher), labels[state(r, now)], _short(r.starts_at, cfg.timezone),
                      _short(r.ends_at, cfg.timezone), r.created_by, r.reason)
    out.print(table)


@silences_app.command("expire")
@cli_errors
def expire(silence_id: int, config: Optional[Path] = ConfigOpt) -> None:
    """End a silence now: matching pages go out again."""
    cfg = _config(config)
    row = expire_silence(_db(config), silence_id, _now(), cfg.timezone)
    typer.echo(f"silence #{row.id} ({describe(row.matcher)}) expired at {_local(row.ends_at, cfg.timezone)}")
