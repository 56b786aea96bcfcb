"""`monitor web`: serve the web console alone, against the config's database (no polling).

For a daemon on another host, or several consoles in front of one database. Inside the daemon
(`monitor run`) the console is served on the daemon's own listener when the config has `console:`.
Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import typer

from monitor.cli.main import ConfigOpt, _ctx, app, cli_errors, out, setup_logging

DEFAULT_BIND = "127.0.0.1:8788"


@app.command("web")
@cli_errors
def web(config: Optional[Path] = ConfigOpt,
        bind: str = typer.Option(DEFAULT_BIND, "--bind", help="HOST:PORT to listen on (127.0.0.1: behind nginx)."),
        log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR.")) -> None:
    """Serve the web console (no polling) until Ctrl-C / SIGTERM."""
    from monitor.app.httpd import HttpServer
    from monitor.web.app import create_app  # Starlette, Jinja and uvicorn load only for this command

    setup_logging(log_level)
    ctx = _ctx(config)
    ctx.db  # migrate before the first request, and fail here on a bad database
    server = HttpServer(bind, max_body=1024 * 1024, app_factory=lambda _routes: create_app(ctx))
    server.start()
    out.print(f"舆情哨兵 console: {ctx.config.console.public_url or server.url}/  (Ctrl-C to stop)", highlight=False)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop(timeout=5)
