"""The channel plugin interface.

``build_payload(alert)`` is pure (tested against each platform's documented
format); ``send(payload)`` does the I/O and raises
:class:`monitor.errors.ChannelError` on failure. Delivery bookkeeping (the
notifications table, failures, silences) lives in :mod:`alerts.notify`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import Field

from alerts.alert import Alert
from alerts.severity import Severity
from monitor.configtypes import PluginConfig, PositiveDuration


class ChannelConfig(PluginConfig):
    min_severity: Severity = Severity.IV
    timeout: PositiveDuration = Field(default="10s", validate_default=True)


class Channel(ABC):
    config_model: ClassVar[type[ChannelConfig]]

    def __init__(self, config: ChannelConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    def accepts(self, alert: Alert) -> bool:
        return alert.severity >= self.config.min_severity

    @abstractmethod
    def build_payload(self, alert: Alert) -> Any:
        """The exact body this channel would send for ``alert`` (no I/O)."""

    @abstractmethod
    def send(self, payload: Any) -> None:
        """Deliver one payload; raise ChannelError on failure."""

    def close(self) -> None:
        pass
