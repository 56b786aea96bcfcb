"""`monitor status`: is the daemon alive, what is queued, when did each source last poll."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from monitor.cli.main import ConfigOpt, _config, _db, _local, _now, cli_errors
from monitor.app.lease import DEFAULT_TTL, current
from alerts.delivery import depths
from monitor.storage.models import IncidentRow, SourceStateRow

out = Console()


def status_doc(db, now) -> dict:
    lease = current(db)
    with db.session() as s:
        incidents = dict(s.execute(select(IncidentRow.status, func.count()).group_by(IncidentRow.status)).all())
        deliveries = depths(s)
        sources = [{"name": r.name, "type": r.type,
                    "last_poll_at": r.last_poll_at and r.last_poll_at.isoformat(),
                    "last_success_at": r.last_success_at and r.last_success_at.isoformat(),
                    "consecutive_failures": r.consecutive_failures or 0, "last_error": r.last_error}
                   for r in s.scalars(select(SourceStateRow).order_by(SourceStateRow.name))]
    daemon = None
    if lease is not None:
        age = (now - lease.heartbeat_at).total_seconds()
        daemon = {"alive": age < DEFAULT_TTL.total_seconds(), "host": lease.host, "pid": lease.pid,
                  "started_at": lease.started_at.isoformat(), "heartbeat_at": lease.heartbeat_at.isoformat(),
                  "heartbeat_age_s": round(age, 1), "version": lease.info.get("version")}
    return {"daemon": daemon,
            "incidents": {k: incidents.get(k, 0) for k in ("open", "acknowledged", "resolved")},
            "queue": {"deliveries_pending": deliveries["pending"], "deliveries_failed": deliveries["failed"]},
            "sources": sources}


@cli_errors
def status(config: Optional[Path] = ConfigOpt,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Daemon heartbeat, queue depths and the last poll of each source (exit 1 if no daemon is alive)."""
    cfg = _config(config)
    doc = status_doc(_db(config), _now())
    alive = bool(doc["daemon"] and doc["daemon"]["alive"])
    if as_json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        raise typer.Exit(0 if alive else 1)
    d = doc["daemon"]
    if d is None:
        out.print("[red]daemon: not running[/] (no lease in this database)")
    else:
        state = "[green]running[/]" if d["alive"] else "[red]not responding[/]"
        out.print(f"daemon: {state} on {d['host']} pid {d['pid']}, heartbeat {d['heartbeat_age_s']:.0f}s ago, "
                  f"version {d['version']}", highlight=False)
    i, q = doc["incidents"], doc["queue"]
    out.print(f"incidents: {i['open']} open, {i['acknowledged']} acknowledged; "
              f"deliveries: {q['deliveries_pending']} pending, {q['deliveries_failed']} given up", highlight=False)
    table = Table(title="sources")
    for col in ("name", "type", "last poll", "last success", "failures", "last error"):
        table.add_column(col, overflow="fold")
    from datetime import datetime
    for src in doc["sources"]:
        parse = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
        table.add_row(src["name"], src["type"], _local(parse(src["last_poll_at"]), cfg.timezone),
                      _local(parse(src["last_success_at"]), cfg.timezone), str(src["consecutive_failures"]),
                      src["last_error"] or "")
    out.print(table)
    raise typer.Exit(0 if alive else 1)
