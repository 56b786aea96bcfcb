"""Front end: the ``monitor`` command line — thin typer modules that parse, call the service layer and print.

Every command maps :class:`monitor.core.errors.MonitorError` to one line on stderr and an exit code.
"""

from monitor.cli.main import app, main

__all__ = ["app", "main"]
