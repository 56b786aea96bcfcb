"""The sentiment feedback store (``sentiment_feedback``): people's corrections of a stored mention's label."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.models import SentimentFeedbackRow


@dataclass(frozen=True)
class Feedback:
    id: int
    mention_id: int | None
    label: str
    text: str  # the text as labelled (kept if the mention is pruned)
    actor: str
    at: datetime
    previous_label: str | None
    previous_score: float | None
    model_version: str | None  # the model that had scored it


def _record(row: SentimentFeedbackRow) -> Feedback:
    return Feedback(**{f.name: getattr(row, f.name) for f in fields(Feedback)})


def add(s: Session, mention_id: int, label: str, text: str, actor: str, at: datetime, *,
        previous_label: str | None, previous_score: float | None, model_version: str | None) -> Feedback:
    row = SentimentFeedbackRow(mention_id=mention_id, label=label, text=text, actor=actor, at=at,
                               previous_label=previous_label, previous_score=previous_score,
                               model_version=model_version)
    s.add(row)
    s.flush()
    return _record(row)


def every(s: Session) -> list[Feedback]:
    """Every correction, oldest first."""
    return [_record(r) for r in s.scalars(select(SentimentFeedbackRow).order_by(SentimentFeedbackRow.id))]


def of_mentions(s: Session, mention_ids: list[int]) -> list[Feedback]:
    """The corrections of these mentions, oldest first (the last one of a mention is its current label)."""
    if not mention_ids:
        return []
    rows = s.scalars(select(SentimentFeedbackRow).where(SentimentFeedbackRow.mention_id.in_(list(mention_ids)))
                     .order_by(SentimentFeedbackRow.id))
    return [_record(r) for r in rows]
