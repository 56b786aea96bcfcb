"""`monitor silences add|list|expire`: mute pages for a topic / rule / severity for a while.

The rules (matcher, --for / --until, validation) are :mod:`monitor.app.service.silences`'.
Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from monitor.cli.main import ConfigOpt, _actor, _ctx, _local, _now, app, cli_errors, err, out
from monitor.cli.tables import Styled, print_table

silences_app = typer.Typer(help="Silence pages for a topic, rule or severity for a while.", no_args_is_help=True)
app.add_typer(silences_app, name="silences")
STATE_LABEL = {"active": Styled("生效中", "green"), "pending": Styled("未开始", "cyan"), "expired": Styled("已过期", "dim")}


def _service():
    from monitor.app.service import silences

    return silences


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
    ctx = _ctx(config)
    service = _service()
    added = service.add(ctx, topic=topic, rule=rule, severity=severity, for_=for_, until=until, reason=reason,
                        actor=_actor(actor), now=_now())
    for warning in added.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    s = added.silence
    typer.echo(f"silence #{s.id}: {service.describe(s.matcher)} until {_local(s.ends_at, ctx.tz)} "
               f"({ctx.tz}) — {s.reason}")


@silences_app.command("list")
@cli_errors
def list_(config: Optional[Path] = ConfigOpt,
          all_: bool = typer.Option(False, "--all", help="Include expired silences."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List active silences (with --all: expired ones too), latest ending first."""
    ctx = _ctx(config)
    now = _now()
    service = _service()
    rows = service.listing(ctx, now, include_expired=all_)
    if as_json:
        print(json.dumps([{"id": r.id, "matcher": r.matcher, "state": r.state(now),
                           "starts_at": r.starts_at.isoformat(), "ends_at": r.ends_at.isoformat(),
                           "reason": r.reason, "created_by": r.created_by, "created_at": r.created_at.isoformat()}
                          for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no silences" if all_ else "no active silences")
        return
    from monitor.app.service import local_time

    print_table(out, "静默 silences", ("#", "匹配", "状态", "开始", "结束", "创建人", "原因"), [
        (str(r.id), service.describe(r.matcher), STATE_LABEL[r.state(now)],
         local_time(r.starts_at, ctx.tz, "%m-%d %H:%M"), local_time(r.ends_at, ctx.tz, "%m-%d %H:%M"),
         r.created_by, r.reason)
        for r in rows])


@silences_app.command("expire")
@cli_errors
def expire(silence_id: int, config: Optional[Path] = ConfigOpt) -> None:
    """End a silence now: matching pages go out again."""
    ctx = _ctx(config)
    service = _service()
    s = service.expire(ctx, silence_id, _now())
    typer.echo(f"silence #{s.id} ({service.describe(s.matcher)}) expired at {_local(s.ends_at, ctx.tz)}")
