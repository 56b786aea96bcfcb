"""The channel plugin interface.

``build_payload(alert)`` is pure (tested against each platform's documented
format); ``send(payload)`` does the I/O and raises
:class:`monitor.core.errors.ChannelError` on failure. Delivery bookkeeping (the
queue, retries, rate limits, fallback, the notifications table, silences)
lives in :mod:`alerts.notify` and :mod:`alerts.delivery`; every channel
carries its delivery settings in :class:`ChannelConfig`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field, SecretStr

from alerts.alert import Alert
from monitor.core.severity import Severity
from monitor.core.configtypes import Frozen, Name, PluginConfig, PositiveDuration


class RetryPolicy(Frozen):
    """Exponential backoff: wait ``backoff``, then ``backoff*factor`` … up to ``max_backoff``."""

    attempts: int = Field(default=5, ge=1, le=100)  # in all, the first one included
    backoff: PositiveDuration = Field(default="30s", validate_default=True)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_backoff: PositiveDuration = Field(default="10m", validate_default=True)

    def delay(self, failed_attempts: int) -> timedelta:
        """How long to wait after the ``failed_attempts``-th failure before trying again."""
        seconds = self.backoff.total_seconds() * self.factor ** max(0, failed_attempts - 1)
        return min(timedelta(seconds=seconds), self.max_backoff)


class RateLimit(Frozen):
    """At most ``messages`` sends (attempts that reached for the network) per ``per``."""

    messages: int = Field(ge=1)
    per: PositiveDuration = Field(default="1m", validate_default=True)


class ChannelConfig(PluginConfig):
    min_severity: Severity = Severity.IV
    timeout: PositiveDuration = Field(default="10s", validate_default=True)
    retry: RetryPolicy = RetryPolicy()
    rate_limit: RateLimit | None = None
    fallback: Name | None = None  # another channel's name: paged when this one stays down
    fallback_after: int = Field(default=2, ge=1)  # failed attempts before the fallback is paged


class Channel(ABC):
    config_model: ClassVar[type[ChannelConfig]]

    def __init__(self, config: ChannelConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    def accepts(self, alert: Alert) -> bool:
        return alert.severity >= self.config.min_severity

    def secret_values(self) -> list[str]:
        """Every secret in this channel's config (and the tokens inside secret URLs), for redaction."""
        out: list[str] = []
        _collect_secrets(self.config, out)
        return out

    @abstractmethod
    def build_payload(self, alert: Alert) -> Any:
        """The exact body this channel would send for ``alert`` (no I/O)."""

    @abstractmethod
    def send(self, payload: Any) -> None:
        """Deliver one payload; raise ChannelError on failure."""

    def close(self) -> None:
        pass


def _collect_secrets(value: Any, out: list[str]) -> None:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            out.append(secret)
            out.extend(_url_tokens(secret))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect_secrets(getattr(value, name), out)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_secrets(item, out)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _collect_secrets(item, out)


def _url_tokens(secret: str) -> list[str]:
    """Robot URLs carry their token in the query (DingTalk, WeCom) or the path (Feishu, Slack)."""
    if "://" not in secret:
        return []
    parts = urlsplit(secret)
    tokens = [v for _, v in parse_qsl(parts.query) if len(v) >= 8]
    tokens += [seg for seg in parts.path.split("/") if len(seg) >= 16]
    return tokens
