"""Keyword topic matching: a mention belongs to a topic when its text holds any
keyword and none of the topic's exclude words (case-insensitive)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()


class TopicMatcher:
    def __init__(self, topics: Iterable[Topic]):
        self._topics = [
            (t.name, tuple(k.lower() for k in t.keywords if k), tuple(e.lower() for e in t.exclude if e))
            for t in topics
        ]

    def match(self, text: str) -> tuple[str, ...]:
        folded = (text or "").lower()
        return tuple(
            name
            for name, keywords, exclude in self._topics
            if any(k in folded for k in keywords) and not any(e in folded for e in exclude)
        )
