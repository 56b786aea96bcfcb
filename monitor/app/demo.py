"""`monitor run --demo`: the bundled crisis scenario, end to end, on this machine.

A local feed server replays ``fixtures/demo/scenario.jsonl`` (three calm hours
of 鲜丰奶茶 mentions, then a burst of complaints starting ~15 s after start);
the daemon polls it every 5 s, stores into SQLite under the data dir and prints
pages to the terminal. Each run starts from a fresh demo database, so the page
shows again; a database the demo did not create is never touched.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from monitor.app.config import load_config
from monitor.app.daemon import Daemon
from monitor.app.demo_feed import DemoFeedServer
from monitor.app.service import users
from monitor.app.service.context import Context
from monitor.core.errors import UsageError

DEMO_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
MARKER = ".demo-database"
CONSOLE_PORT = 8787
DEMO_USER, DEMO_PASSWORD = "demo", "xianfeng-demo"  # printed on start; the demo database is local and throwaway


def console_port(preferred: int = CONSOLE_PORT) -> int:
    """``preferred`` when it is free on 127.0.0.1, else any free port (a second demo, a busy machine)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise UsageError("no free port on 127.0.0.1 for the demo console")


def prepare_data_dir(data_dir: Path) -> None:
    """Remove the previous demo database; refuse to touch one the demo did not create."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db_files = [data_dir / f"monitor.db{suffix}" for suffix in ("", "-wal", "-shm")]
    marker = data_dir / MARKER
    if db_files[0].exists() and not marker.exists():
        raise UsageError(f"{db_files[0]} exists and was not created by the demo; "
                         "set MONITOR_DATA_DIR to another directory to run the demo")
    for f in db_files:
        f.unlink(missing_ok=True)
    marker.write_text("monitor.db here belongs to `monitor run --demo` and is replaced on each demo run\n")


def run_demo(console: Console, *, web=None) -> int:
    if not (DEMO_DIR / "scenario.jsonl").exists():
        raise UsageError(f"demo files not found in {DEMO_DIR} (run from a source checkout)")
    data_dir = Path(os.environ.get("MONITOR_DATA_DIR", "data")).resolve()
    prepare_data_dir(data_dir)
    with DemoFeedServer(DEMO_DIR / "scenario.jsonl") as feed:
        env = {**os.environ, "DEMO_FEED_URL": feed.url, "DEMO_DATA_DIR": str(data_dir),
               "DEMO_CONSOLE_PORT": str(console_port())}
        config = load_config(DEMO_DIR / "config.yaml", env=env)
        ctx = Context(config)
        users.add(ctx, DEMO_USER, DEMO_PASSWORD, role="admin", now=datetime.now(timezone.utc))
        ctx.db.dispose()
        console.print(
            "[bold]舆情哨兵 demo[/bold] — 鲜丰奶茶: three calm hours of mentions, then a wave of complaints.\n"
            f"  feed (replayed in real time): {feed.url}\n"
            f"  database: {data_dir / 'monitor.db'}\n"
            f"  [bold]console: {config.console.public_url}[/bold]  — log in as [bold]{DEMO_USER}[/bold] / "
            f"[bold]{DEMO_PASSWORD}[/bold]\n"
            "  The first page should appear here within about 30 seconds, with a link to the incident in the\n"
            "  console. Press Ctrl-C to stop.",
            highlight=False,
        )
        clean = Daemon(config, web=web).run_until_signalled()  # web: the console's app factory (from the CLI)
    console.print("\nStopped. Look at what happened (or run `make demo` again and use the console):\n"
                  "  .venv/bin/monitor incidents list\n"
                  "  .venv/bin/monitor incidents show 1\n"
                  "  .venv/bin/monitor report incident 1 --out report.html   # 复盘 report with chart and timeline\n"
                  "  .venv/bin/monitor sources", highlight=False)
    return 0 if clean else 1
