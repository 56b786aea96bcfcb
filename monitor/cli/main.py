"""The ``monitor`` command line: a thin layer over the library.

Every command turns :class:`monitor.core.errors.MonitorError` into one line on
stderr and an exit code (2 for configuration errors, 1 otherwise) — never a
traceback.
"""

from __future__ import annotations

import functools
import getpass
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from monitor.cli.tables import Styled, print_table
from monitor.core.errors import ConfigError, MonitorError, UsageError
from monitor.core.severity import Severity

# Start-up is part of every command: modules that cost more than a few milliseconds (the config's
# plugins, the database, rich, the daemon, the console) are imported inside the commands using them.
app = typer.Typer(help="舆情哨兵 — public-opinion monitoring and crisis alerts.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
incidents_app = typer.Typer(help="List, inspect and work incidents.", invoke_without_command=True)
app.add_typer(incidents_app, name="incidents")


class _LazyConsole:
    """A rich Console made on first use (rich costs tens of milliseconds; many commands print one line)."""

    def __init__(self, **kwargs):
        self._kwargs, self._console = kwargs, None

    def get(self):
        """The Console itself (to hand to rich's own classes: progress bars, live displays)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


out = _LazyConsole()
err = _LazyConsole(stderr=True, soft_wrap=True)

ConfigOpt = typer.Option(None, "--config", "-c", envvar="MONITOR_CONFIG",
                         help="YAML config file (default: built-in defaults, data in $MONITOR_DATA_DIR or ./data).")
ActorOpt = typer.Option(None, "--as", help="Who acts (default: $MONITOR_ACTOR or the OS user).")
NoteOpt = typer.Option(None, "--note", help="A note for the timeline.")
STATUS_LABEL = {"open": "未处理", "acknowledged": "处理中", "resolved": "已解决"}
HEALTH_STYLE = {"ok": "green", "erroring": "yellow", "failing": "red", "stale": "yellow"}  # never polled: dim


def cli_errors(fn):
    """Run a command; report MonitorError as one line and a non-zero exit code."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for line in exc.problems:
                err.print(f"[red]error:[/red] {line}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except MonitorError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    return wrapper


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s %(message)s")
    for noisy in ("apscheduler", "httpx", "httpcore", "jieba", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config(path: Optional[Path]):
    from monitor.app.config import load_config, parse_config

    if path is not None:
        return load_config(path)
    return parse_config(f"data_dir: {json.dumps(os.environ.get('MONITOR_DATA_DIR', 'data'))}\n", label="(defaults)")


def _ctx(path: Optional[Path]):
    """The services' context for ``--config`` (read when first needed; the database opened when first used)."""
    from monitor.app.service import Context

    return Context(loader=lambda: _config(path))


def _actor(actor: Optional[str]) -> str:
    return actor or os.environ.get("MONITOR_ACTOR") or getpass.getuser()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _local(dt, tz: str) -> str:
    from monitor.app.service import local_time

    return local_time(dt, tz)


def _incidents():
    from monitor.app.service import incidents

    return incidents


def _severity(value: str) -> Styled:
    severity = Severity(value)
    return Styled(severity.value, severity.terminal_style)


# -- run ------------------------------------------------------------------------------
@app.command()
@cli_errors
def run(config: Optional[Path] = ConfigOpt,
        demo: bool = typer.Option(False, "--demo", help="Run the bundled crisis demo (local feed server, SQLite)."),
        log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR.")) -> None:
    """Run the monitoring daemon until Ctrl-C / SIGTERM."""
    setup_logging(log_level)
    if demo:
        from monitor.app.demo import run_demo

        from monitor.web.app import create_app

        raise typer.Exit(run_demo(out.get(), web=create_app))
    if config is None:
        raise UsageError("no config: use `monitor run --config FILE` (or $MONITOR_CONFIG), or `monitor run --demo`")
    from monitor.app.config import load_config
    from monitor.app.daemon import daemon_class
    from monitor.web.app import create_app  # served on the daemon's listener when the config has `console:`

    loaded = load_config(config)
    clean = daemon_class(loaded)(loaded, config_path=config, web=create_app).run_until_signalled()
    raise typer.Exit(0 if clean else 1)


@app.command("check-config")
@cli_errors
def check_config(file: Path = typer.Argument(..., help="YAML config file to validate.")) -> None:
    """Validate a config file without starting anything (exit 2 if invalid)."""
    from monitor.app.config import load_config

    cfg = load_config(file)
    typer.echo(f"{file}: ok — {len(cfg.sources)} sources, {len(cfg.topics)} topics, "
               f"{len(cfg.rules)} rules, {len(cfg.channels)} channels")


@app.command()
@cli_errors
def migrate(config: Optional[Path] = ConfigOpt) -> None:
    """Create or upgrade the database schema to the newest version."""
    db = _ctx(config).db
    typer.echo(f"{db.display_url}: schema at revision {db.schema_revision()}")


# -- incidents ------------------------------------------------------------------------
@incidents_app.callback()
def incidents_default(ctx: typer.Context, config: Optional[Path] = ConfigOpt,
                      status: Optional[str] = typer.Option(None, "--status", help="open, acknowledged or resolved."),
                      since: Optional[str] = typer.Option(None, "--since", help='Only incidents opened within, e.g. "24h".'),
                      as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Without a subcommand: the same as `incidents list`."""
    if ctx.invoked_subcommand is None:
        list_incidents(config, status, since, as_json)


@incidents_app.command("list")
@cli_errors
def list_incidents(config: Optional[Path] = ConfigOpt,
                   status: Optional[str] = typer.Option(None, "--status", help="open, acknowledged or resolved."),
                   since: Optional[str] = typer.Option(None, "--since", help='Only incidents opened within, e.g. "24h".'),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List incidents, newest first."""
    ctx = _ctx(config)
    rows = _incidents().list_incidents(ctx, _now(), status=status, since=since)
    if as_json:
        print(json.dumps([_incident_json(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no incidents")
        return
    print_table(out, "事件 incidents", ("#", "级别", "状态", "话题", "规则", "开始", "确认", "解决", "原因"), [
        (str(r.id), _severity(r.severity), STATUS_LABEL.get(r.status, r.status), r.topic, r.rule,
         _local(r.opened_at, ctx.tz), f"{_local(r.acked_at, ctx.tz)} {r.acked_by or ''}".strip(),
         f"{_local(r.resolved_at, ctx.tz)} {r.resolved_by or ''}".strip(), r.reason)
        for r in rows])


def _incident_json(r) -> dict:
    return {
        "id": r.id, "topic": r.topic, "rule": r.rule, "rule_type": r.rule_type, "severity": r.severity,
        "status": r.status, "title": r.title, "reason": r.reason, "numbers": r.numbers,
        "opened_at": r.opened_at.isoformat(), "acked_at": r.acked_at and r.acked_at.isoformat(),
        "acked_by": r.acked_by, "resolved_at": r.resolved_at and r.resolved_at.isoformat(),
        "resolved_by": r.resolved_by,
    }


@incidents_app.command("show")
@cli_errors
def show_incident(incident_id: int, config: Optional[Path] = ConfigOpt,
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one incident: summary, numbers, evidence and timeline."""
    ctx = _ctx(config)
    view = _incidents().view(ctx, incident_id)
    r, events, mentions = view.incident, view.events, view.mentions
    if as_json:
        doc = _incident_json(r) | {
            "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, "message": e.message} for e in events],
            "mentions": [{"id": m.id, "author": m.author, "url": m.url, "text": m.text, "score": m.score} for m in mentions],
            "plan": r.plan,
            "steps": [{"position": st.position, "title": st.title, "owner": st.owner, "status": st.status,
                       "due_at": st.due_at and st.due_at.isoformat(), "done_by": st.done_by, "reply": st.reply}
                      for st in view.steps],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    severity = Severity(r.severity)
    out.print(f"[bold]#{r.id} {r.title}[/bold]  级别 [{severity.terminal_style}]{severity.value}[/]  "
              f"状态 {STATUS_LABEL.get(r.status, r.status)}", highlight=False)
    out.print(f"原因：{r.reason}", highlight=False)
    out.print("数据：" + json.dumps(r.numbers, ensure_ascii=False), highlight=False)
    if mentions:
        out.print("[bold]代表性内容[/bold]")
        for m in mentions:
            out.print(f"  #{m.id} [{m.score:.2f}] {m.text[:80]} — {m.author or '?'} {m.url or ''}", highlight=False)
    if view.steps:
        out.print(f"[bold]应急预案 {r.plan}[/bold]", highlight=False)
        for st in view.steps:
            mark = {"done": "[green]✔[/]", "skipped": "[dim]–[/]"}.get(st.status, "[yellow]☐[/]")
            who = f" — {st.done_by} {_local(st.done_at, ctx.tz)}" if st.done_by else ""
            due = f"，{_local(st.due_at, ctx.tz)}前" if st.due_at else ""
            out.print(f"  {mark} {st.position}. {st.title}（{st.owner}{due}）{who}", highlight=False)
            if st.reply:
                out.print(f"      回复模板：{st.reply}", highlight=False, style="dim")
    print_table(out, "时间线 timeline", ("时间", "事件", "操作人", "说明"),
                [(_local(e.at, ctx.tz), e.kind, e.actor, e.message) for e in events])


@incidents_app.command("ack")
@cli_errors
def ack_incident(incident_id: int, config: Optional[Path] = ConfigOpt,
                 actor: Optional[str] = ActorOpt,
                 note: Optional[str] = NoteOpt) -> None:
    """Acknowledge an open incident."""
    r = _incidents().acknowledge(_ctx(config), incident_id, actor=_actor(actor), now=_now(), note=note)
    typer.echo(f"#{r.id} acknowledged by {r.acked_by}")


@incidents_app.command("resolve")
@cli_errors
def resolve_incident(incident_id: int, config: Optional[Path] = ConfigOpt,
                     actor: Optional[str] = ActorOpt,
                     note: Optional[str] = NoteOpt) -> None:
    """Resolve an incident."""
    r = _incidents().resolve(_ctx(config), incident_id, actor=_actor(actor), now=_now(), note=note)
    typer.echo(f"#{r.id} resolved by {r.resolved_by}")


@incidents_app.command("note")
@cli_errors
def note_incident(incident_id: int, text: str, config: Optional[Path] = ConfigOpt,
                  actor: Optional[str] = ActorOpt) -> None:
    """Add a note to an incident's timeline."""
    _incidents().add_note(_ctx(config), incident_id, text, actor=_actor(actor), now=_now())
    typer.echo(f"#{incident_id}: note added")


@incidents_app.command("step")
@cli_errors
def step_incident(incident_id: int, position: int,
                  status: str = typer.Argument("done", help="done, skipped or pending."),
                  config: Optional[Path] = ConfigOpt,
                  actor: Optional[str] = ActorOpt) -> None:
    """Mark step N of the incident's response plan done (or skipped / pending again)."""
    step = _incidents().set_step(_ctx(config), incident_id, position, status, actor=_actor(actor), now=_now())
    typer.echo(f"#{incident_id} step {step.position} ({step.title}): {step.status}")


@incidents_app.command("assign")
@cli_errors
def assign_incident(incident_id: int, person: str, config: Optional[Path] = ConfigOpt,
                    actor: Optional[str] = ActorOpt) -> None:
    """Assign an incident to a person."""
    _incidents().assign(_ctx(config), incident_id, person, actor=_actor(actor), now=_now())
    typer.echo(f"#{incident_id} assigned to {person}")


# -- sources --------------------------------------------------------------------------
@app.command()
@cli_errors
def sources(config: Optional[Path] = ConfigOpt,
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List sources with their health: failing / erroring / stale / ok, stale for, last success, last error."""
    from monitor.app.service.sources import source_views

    ctx = _ctx(config)
    views = source_views(ctx, _now())
    rows = [{
        "name": v.name, "type": v.type, "health": v.state,
        "stale_for": _span(v.stale_for), "stale_for_seconds": None if v.stale_for is None else int(v.stale_for.total_seconds()),
        "expect_every": _span(v.expect_every), "last_item_at": v.last_item_at and v.last_item_at.isoformat(),
        "last_success_at": v.last_success_at and v.last_success_at.isoformat(),
        "consecutive_failures": v.consecutive_failures, "failure_threshold": v.health.threshold,
        "last_error": v.last_error, "items_stored": v.items_stored,
    } for v in views]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = []
    for r, v in zip(rows, views):
        stale = r["stale_for"] or "-"
        if r["expect_every"]:
            stale += f" (expect ≤{r['expect_every']})"
        table.append((r["name"], r["type"], Styled(v.state, HEALTH_STYLE.get(v.state, "dim")), stale,
                      _local(v.last_success_at, ctx.tz),
                      str(r["consecutive_failures"]), str(r["items_stored"]), r["last_error"] or ""))
    print_table(out, "数据源 sources",
                ("name", "type", "health", "stale for", "last success", "failures", "stored", "last error"), table)


def _span(td) -> Optional[str]:
    """A duration for people: 45s, 12m, 3h5m, 2d4h (None for None)."""
    if td is None:
        return None
    seconds = max(0, int(td.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


def main() -> None:
    app()


# Commands that live in their own modules (they import this one for its shared helpers).
from monitor.cli import status as _status  # noqa: E402

app.command("status")(_status.status)
from monitor.cli import report, silences, replay, nlp  # noqa: E402,F401 - register `report`, `silences`, `replay`, `nlp`, `label`
from monitor.cli import users, web  # noqa: E402,F401 - register `users`, `web`
