"""`monitor status`: is the daemon alive, what is queued, when did each source last poll."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from monitor.cli.main import HEALTH_STYLE, ConfigOpt, _ctx, _local, _now, cli_errors, out
from monitor.cli.tables import Styled, print_table


def _iso(dt) -> Optional[str]:
    return dt and dt.isoformat()


def status_doc(st) -> dict:
    """The ``--json`` document."""
    d = st.daemon
    daemon = d and {"alive": d.alive, "host": d.host, "pid": d.pid, "started_at": d.started_at.isoformat(),
                    "heartbeat_at": d.heartbeat_at.isoformat(), "heartbeat_age_s": d.heartbeat_age_s,
                    "version": d.version}
    return {"daemon": daemon,
            "incidents": st.incidents,
            "queue": {"deliveries_pending": st.deliveries_pending, "deliveries_failed": st.deliveries_failed},
            "sources": [{"name": v.name, "type": v.type, "health": v.state,
                         "last_poll_at": _iso(v.last_poll_at), "last_success_at": _iso(v.last_success_at),
                         "consecutive_failures": v.consecutive_failures, "last_error": v.last_error}
                        for v in st.sources]}


@cli_errors
def status(config: Optional[Path] = ConfigOpt,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Daemon heartbeat, queue depths and the last poll of each source (exit 1 if no daemon is alive)."""
    from monitor.app.service.status import status as read_status

    ctx = _ctx(config)
    st = read_status(ctx, _now())
    if as_json:
        print(json.dumps(status_doc(st), ensure_ascii=False, indent=2))
        raise typer.Exit(0 if st.alive else 1)
    d = st.daemon
    if d is None:
        out.print("[red]daemon: not running[/] (no lease in this database)")
    else:
        state = "[green]running[/]" if d.alive else "[red]not responding[/]"
        out.print(f"daemon: {state} on {d.host} pid {d.pid}, heartbeat {d.heartbeat_age_s:.0f}s ago, "
                  f"version {d.version}", highlight=False)
    i = st.incidents
    out.print(f"incidents: {i['open']} open, {i['acknowledged']} acknowledged; "
              f"deliveries: {st.deliveries_pending} pending, {st.deliveries_failed} given up", highlight=False)
    print_table(out, "sources", ("name", "type", "health", "last poll", "last success", "failures", "last error"),
                [(v.name, v.type, Styled(v.state, HEALTH_STYLE.get(v.state, "dim")), _local(v.last_poll_at, ctx.tz),
                  _local(v.last_success_at, ctx.tz), str(v.consecutive_failures), v.last_error or "")
                 for v in st.sources])
    raise typer.Exit(0 if st.alive else 1)
