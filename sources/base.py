"""The source plugin interface.

A source turns "what I fetched last time" (:class:`SourceState`) into new raw
items plus the state to remember once those items are safely stored
(:class:`FetchResult`). Sources do no storage, scoring or alerting; errors are
raised as :class:`monitor.core.errors.SourceError` subclasses naming the source.

Adding a source type: one module defining a ``*Config`` model (with
``type: Literal["name"]``) and a :class:`Source` subclass whose
``config_model`` points at it, plus one line in :mod:`sources.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Mapping

from monitor.core.configtypes import PluginConfig, PositiveDuration, Duration
from monitor.core.domain import SourceState
from pydantic import Field


class SourceConfig(PluginConfig):
    """Settings every source has."""

    interval: PositiveDuration = Field(default="60s", validate_default=True)
    jitter: Duration = Field(default="0s", validate_default=True)
    timezone: str = "Asia/Shanghai"  # for timestamps without an offset
    enabled: bool = True
    # Health: no new item for longer than this makes the source "stale" (数据源异常);
    # None: never stale (a quiet source is fine).
    expect_every: PositiveDuration | None = None
    platform: str | None = None  # stored with each mention ("weibo", "bilibili", …)


@dataclass(frozen=True)
class RawItem:
    """An item as the source found it, before normalisation.

    ``published_at`` may be naive (then the source's timezone applies) or None.
    """

    external_id: str
    text: str
    title: str | None = None
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    parent_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    platform: str | None = None
    author_followers: int | None = None
    likes: int | None = None
    reposts: int | None = None
    comments: int | None = None


@dataclass(frozen=True)
class FetchResult:
    items: list[RawItem]
    state: SourceState
    not_modified: bool = False
    skipped: list[str] = field(default_factory=list)  # reasons for items dropped as unusable


class Source(ABC):
    config_model: ClassVar[type[SourceConfig]]
    push: ClassVar[bool] = False  # True: items arrive through the daemon's HTTP listener, not by polling

    def __init__(self, config: SourceConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def fetch(self, state: SourceState) -> FetchResult:
        """Return new items since ``state``; raise SourceError on failure."""

    def politeness(self) -> dict | None:
        """What this source must keep to before its next request (slow-down, Retry-After), to be
        stored between polls; None when nothing. HTTP sources answer through their fetcher."""
        fetcher = getattr(self, "_fetcher", None)
        return fetcher.politeness() if fetcher is not None and hasattr(fetcher, "politeness") else None

    def restore_politeness(self, data: dict | None) -> None:
        """Take up what :meth:`politeness` stored (by whichever daemon polled last)."""
        fetcher = getattr(self, "_fetcher", None)
        if fetcher is not None and hasattr(fetcher, "restore_politeness"):
            fetcher.restore_politeness(data)

    def close(self) -> None:
        """Release network clients or file handles."""
