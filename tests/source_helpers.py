"""Helpers shared by the source tests: fixture bytes, a keyword scorer, a pipeline on a config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.app.config import parse_config
from monitor.app.pipeline import Pipeline

FEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
RSS_TYPE = "application/rss+xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
NEGATIVE_WORDS = ("烫", "差", "投诉", "退款", "无语", "失望")


def feed_bytes(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


class KeywordScorer:
    """Deterministic stand-in for the sentiment model: negative words → 0.1, else 0.8."""

    version = "keywords-1"

    def score(self, text: str) -> float:
        return 0.1 if any(w in text for w in NEGATIVE_WORDS) else 0.8


class Clock:
    """A settable clock for pipelines (aware UTC)."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **kw) -> None:
        from datetime import timedelta

        self.now += timedelta(**kw)


def make_pipeline(db, sources: list[dict[str, Any]], *, clock=None, topics=None, rules=None,
                  channels=None) -> Pipeline:
    doc = {"sources": sources, "topics": topics or [{"name": "星河手机", "keywords": ["星河", "X5"]}],
           "rules": rules or []}
    config = parse_config(json.dumps(doc, ensure_ascii=False))
    kwargs = {"scorer": KeywordScorer(), "channels": channels if channels is not None else []}
    if clock is not None:
        kwargs["clock"] = clock
    return Pipeline(config, db, **kwargs)
