"""People's corrections of stored sentiment, and the training data they make.

``record(session, mention_id, label, actor, now)`` stores one correction
(``monitor label 42 negative``); the newest correction of a mention counts.
:func:`examples` turns the corrections into training examples, split
deterministically into a training part and a held-out part (by mention), so
``monitor nlp train --from-feedback`` never trains on what ``monitor nlp eval
--feedback`` measures.
"""

from __future__ import annotations

from datetime import datetime

from monitor.core.errors import UsageError
from monitor.storage import Session, repo
from monitor.storage import feedback as store
from monitor.storage.feedback import Feedback
from nlp.datasets import Example, split_holdout

FEEDBACK_LABELS = ("negative", "neutral", "positive")
LABEL_ALIASES = {"neg": "negative", "negative": "negative", "0": "negative", "负面": "negative", "负": "negative",
                 "pos": "positive", "positive": "positive", "1": "positive", "正面": "positive", "正": "positive",
                 "neutral": "neutral", "neu": "neutral", "中性": "neutral"}
FEEDBACK_WEIGHT = 3.0  # a correction counts as much as three base documents
HOLDOUT_SHARE = 0.2


def normalise_label(value: str) -> str:
    label = LABEL_ALIASES.get(value.strip().lower())
    if label is None:
        raise UsageError(f"label: expected one of {', '.join(FEEDBACK_LABELS)}, got {value!r}")
    return label


def record(session: Session, mention_id: int, label: str, actor: str, now: datetime) -> Feedback:
    """Store a correction of mention ``mention_id``'s sentiment; the mention's stored label is not rewritten."""
    label = normalise_label(label)
    found = repo.mentions_by_ids(session, [mention_id])
    if not found:
        raise UsageError(f"no mention #{mention_id}")
    m = found[0]
    return store.add(session, mention_id, label, m.text, actor, now, previous_label=m.label,
                     previous_score=m.score, model_version=m.model_version)


def latest(session: Session) -> list[Feedback]:
    """The newest correction per mention (corrections of pruned mentions count by their own id)."""
    newest: dict[object, Feedback] = {}
    for f in store.every(session):
        newest[f.mention_id if f.mention_id is not None else f"f{f.id}"] = f
    return list(newest.values())


def examples(session: Session, *, holdout: float = HOLDOUT_SHARE) -> tuple[list[Example], list[Example]]:
    """(training, held-out) examples from the corrections; neutral corrections are not training data."""
    polar = [f for f in latest(session) if f.label != "neutral"]
    train, held = split_holdout(polar, key=lambda f: f.mention_id if f.mention_id is not None else f"f{f.id}",
                                share=holdout)

    def to_example(f: Feedback, weight: float) -> Example:
        return Example(f.text, 1 if f.label == "positive" else 0, weight)

    return [to_example(f, FEEDBACK_WEIGHT) for f in train], [to_example(f, 1.0) for f in held]
