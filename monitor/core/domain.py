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
    crisis_words: tuple[str, ...] = ()  # crisis-lexicon hits (nlp/crisis.py), filled by the NLP stage
    # Where it came from and how far it reaches (None: the source does not say).
    platform: str | None = None  # "weibo", "bilibili", "zhihu", …
    author_followers: int | None = None
    likes: int | None = None
    reposts: int | None = None
    comments: int | None = None
    # Dedup (sources/dedup.py): a repost / copy is stored and counts toward volume, but
    # belongs to the story of the first mention it duplicates (``story_id``, None for a root).
    simhash: int | None = None  # 64-bit SimHash of the text's jieba tokens
    story_id: int | None = None  # id of the root mention of this mention's story
    duplicate_of: tuple[str, str] | None = None  # (source, external_id) of that root, set by dedup
    dup_kind: str | None = None  # "exact" (same normalised text) | "near" (SimHash) | None
    repost_count: int = 0  # on a root: how many duplicates were merged into its story
    # Place in a ranked list when fetched (hot lists, 1 = top); not stored: the order changes on every poll.
    rank: int | None = None

    @property
    def is_negative(self) -> bool:
        return self.label == "negative"


@dataclass(frozen=True)
class SourceState:
    """What a source remembers between polls (persisted in ``source_state``)."""

    cursor: str | None = None
    etag: str | None = None
    last_modified: str | None = None
