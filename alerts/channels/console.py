"""console: print alerts to the terminal (the demo's channel, and a handy fallback).

The terminal keeps the CLI hint (``确认处理：monitor incidents ack N``); with a web console the
page's address is printed as plain text above it (a terminal shows Markdown links without their URL).
"""

from __future__ import annotations

import sys
from typing import Literal


from alerts.alert import Alert
from alerts.channels.base import Channel, ChannelConfig
from alerts.message import headline, render_markdown
from monitor.core.errors import ChannelError


class ConsoleConfig(ChannelConfig):
    type: Literal["console"]
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleChannel(Channel):
    config_model = ConsoleConfig
    config: ConsoleConfig

    def build_payload(self, alert: Alert) -> dict:
        return {
            "title": headline(alert),
            "markdown": render_markdown(alert, heading=False, actions="cli"),
            "style": "green" if alert.kind == "resolved" else alert.severity.terminal_style,
        }

    def send(self, payload: dict) -> None:
        stream = sys.stdout if self.config.stream == "stdout" else sys.stderr
        try:
            from rich.console import Console  # here: rich's Markdown pulls in markdown-it and pygments
            from rich.markdown import Markdown
            from rich.panel import Panel

            Console(file=stream).print(
                Panel(Markdown(payload["markdown"]), title=payload["title"], border_style=payload["style"])
            )
            stream.flush()
        except (OSError, ValueError) as exc:
            raise ChannelError(self.name, f"cannot write to {self.config.stream}: {exc}") from exc
