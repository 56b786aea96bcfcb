"""Domain values that flow through the pipeline (immutable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Mention:
    """One normalised comment / post, as stored and as seen by the rules.

    ``published_at`` and ``fetched_at`` are timezone-aware UTC. ``text`` is the
    cleaned text that is scored and matched; ``raw_text`` the original.
    Scoring fields are filled by the NLP stage, ``id`` by storage.
    """

    source: str
    external_id: str
    text: str
    raw_text: str
    published_at: datetime
    fetched_at: datetime
    content_hash: str
    url: str | None = None
    author: str | None = None
    title: str | None = None
    parent_id: str | None = None
    score: float | None = None
    label: str | None = None  # "negative" | "neutral" | "positive"
    model_version: str | None = None
    topics: tuple[str, ...] = field(default=())
    id: int | None = None

    @property
    def is_negative(self) -> bool:
        return self.label == "negative"
