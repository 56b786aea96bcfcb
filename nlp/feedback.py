"""People's corrections of stored sentiment, and the training data they make.

``record(session, mention_id, label, actor, now)`` stores one correction
(``monitor label 42 negative``); the newest correction of a mention counts.
:func:`examples` turns the corrections into training examples, split
deterministically into a training part and a held-out part (by mention), so
``monitor nlp train --from-feedback`` never trains on what ``monitor nlp eval
--feedback`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.core.errors import UsageError
from monitor.storage.models import MentionRow, SentimentFeedbackRow
from nlp.datasets import Example, split_holdout

FEEDBACK_LABELS = ("negative", "neutral", "positive")
LABEL_ALIASES = {"neg": "negative", "negative": "negative", "0": "negative", "负面": "negative", "负": "negative",
                 "pos": "positive", "positive": "positive", "1": "positive", "正面": "positive", "正": "positive",
                 "neutral": "neutral", "neu": "neutral", "中性": "neutral"}
FEEDBACK_WEIGHT = 3.0  # a correction counts as much as three base documents
HOLDOUT_SHARE = 0.2


@dataclass(frozen=True)
class Feedback:
    id: int
    mention_id: int | None
    label: str
    text: str
    actor: str
    at: datetime
    previous_label: str | None
    previous_score: float | None
    model_version: str | None


def normalise_label(value: str) -> str:
    label = LABEL_ALIASES.get(value.strip().lower())
    if label is None:
        raise UsageError(f"label: expected one of {', '.join(FEEDBACK_LABELS)}, got {value!r}")
    return label


def record(session: Session, mention_id: int, label: str, actor: str, now: datetime) -> Feedback:
    """Store a correction of mention ``mention_id``'s sentiment; the mention's stored label is not rewritten."""
    label = normalise_label(label)
    mention = session.get(MentionRow, mention_id)
    if mention is None:
        raise UsageError(f"no mention #{mention_id}")
    row = SentimentFeedbackRow(mention_id=mention_id, label=label, text=mention.text, actor=actor, at=now,
                               previous_label=mention.sentiment_label, previous_score=mention.sentiment_score,
                               model_version=mention.model_version)
    session.add(row)
    session.flush()
    return _to_feedback(row)


def _to_feedback(row: SentimentFeedbackRow) -> Feedback:
    return Feedback(row.id, row.mention_id, row.label, row.text, row.actor, row.at, row.previous_label,
                    row.previous_score, row.model_version)


def latest(session: Session) -> list[Feedback]:
    """The newest correction per mention (corrections of pruned mentions count by their own id)."""
    rows = session.scalars(select(SentimentFeedbackRow).order_by(SentimentFeedbackRow.id))
    newest: dict[object, Feedback] = {}
    for row in rows:
        key = row.mention_id if row.mention_id is not None else f"f{row.id}"
        newest[key] = _to_feedback(row)
    return list(newest.values())


def examples(session: Session, *, holdout: float = HOLDOUT_SHARE) -> tuple[list[Example], list[Example]]:
    """(training, held-out) examples from the corrections; neutral corrections are not training data."""
    polar = [f for f in latest(session) if f.label != "neutral"]
    train, held = split_holdout(polar, key=lambda f: f.mention_id if f.mention_id is not None else f"f{f.id}",
                                share=holdout)

    def to_example(f: Feedback, weight: float) -> Example:
        return Example(f.text, 1 if f.label == "positive" else 0, weight)

    return [to_example(f, FEEDBACK_WEIGHT) for f in train], [to_example(f, 1.0) for f in held]
