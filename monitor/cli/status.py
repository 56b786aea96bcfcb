"""`monitor status`: is the daemon alive (or the cluster's nodes), what is queued, when did each source last poll."""

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
                        for v in st.sources],
            "cluster": st.cluster and cluster_doc(st.cluster)}


def cluster_doc(c) -> dict:
    return {"enabled": c.enabled, "dead_after_s": c.dead_after_s, "leader": c.leader,
            "nodes": [{"name": n.name, "host": n.host, "pid": n.pid, "version": n.version, "state": n.state,
                       "alive": n.alive, "started_at": n.started_at.isoformat(),
                       "heartbeat_at": n.heartbeat_at.isoformat(), "heartbeat_age_s": n.heartbeat_age_s,
                       "polls": n.polls, "running": n.running, "sources": n.sources, "leads_rules": n.leads_rules}
                      for n in c.nodes],
            "sources": [{"name": v.name, "polled_by": v.polled_by, "last_poll_at": _iso(v.last_poll_at),
                         "next_poll_at": _iso(v.next_poll_at), "lag_s": v.lag_s, "overdue": v.overdue}
                        for v in c.sources],
            "overdue": len(c.overdue), "worst_lag_s": c.worst_lag_s, "queue": c.queue}


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
    if st.cluster is not None:
        print_cluster(st.cluster, ctx.tz)
    if d is None and st.cluster is None:
        out.print("[red]daemon: not running[/] (no lease in this database)")
    elif d is not None:
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


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


def _where(n) -> str:
    """The node's name, and where it runs unless its name says so already (the default name is host:pid)."""
    where = f"{n.host}:{n.pid}"
    return n.name if n.name == where else f"{n.name}\n{where}"


def print_cluster(c, tz: str) -> None:
    """The cluster section: a line on the nodes and the rules, their table, the overdue sources, the queue."""
    from rich.markup import escape  # names come from configs and hosts: never read as markup

    alive = len(c.alive)
    colour = "green" if alive == len(c.nodes) and alive else "yellow" if alive else "red"
    leader = f"rules led by {escape(c.leader)}" if c.leader else "[red]no node leads the rules[/]"
    nodes = f"{alive} of {len(c.nodes)} node(s) alive" if c.nodes else "no node has joined"
    out.print(f"cluster: [{colour}]{nodes}[/] (dead after {c.dead_after_s:.0f}s); {leader}", highlight=False)
    if c.nodes:
        print_table(out, "nodes", ("node", "version", "state", "heartbeat", "polls", "sources", "rules"),
                    [(_where(n), n.version,
                      Styled(n.state if n.alive else "dead", "green" if n.alive and n.state == "running" else
                             "yellow" if n.alive else "red"),
                      f"{_age(n.heartbeat_age_s)} ago", str(n.polls), str(n.sources),
                      Styled("leader", "bold") if n.leads_rules else "")
                     for n in c.nodes])
    late = c.overdue
    if late:
        worst = late[0]
        out.print(f"[yellow]sources: {len(late)} of {len(c.sources)} overdue[/], worst {escape(worst.name)} "
                  f"{_age(worst.lag_s)} late (last polled by {escape(worst.polled_by or '-')} at "
                  f"{_local(worst.last_poll_at, tz)})", highlight=False)
    else:
        out.print(f"sources: {len(c.sources)} scheduled, none overdue", highlight=False)
    if c.queue is not None:
        q = c.queue
        out.print(f"job queue: {q['todo']} todo, {q['doing']} doing, {q['failed']} failed", highlight=False)
