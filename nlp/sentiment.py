"""Sentiment scoring: a score in [0, 1] (0 = very negative) and a label.

:class:`BayesScorer` is the project's scorer: clean (:mod:`nlp.clean`) →
tokens and features (:mod:`nlp.tokens`) → a linear model (:mod:`nlp.model`).
It scores the author's own words of a post, records its model version with every
score, and batch-scores large polls in a process pool. :func:`scorer_from_config`
builds it from ``sentiment.model`` (``default``: the default model, cached in the
data dir). :class:`SnowNLPScorer` (``SnowNLP(text).sentiments``) stays as the
baseline the benchmark compares against.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol, Sequence

from nlp.clean import clean
from nlp.model import SentimentModel
from nlp.tokens import char_features, features, tokenize

log = logging.getLogger(__name__)

# SnowNLP's segmenter is pure Python and quadratic-ish on long inputs; the
# sentiment of a post is decided well within its first couple of thousand chars.
MAX_SCORED_CHARS = 2000


class Scorer(Protocol):
    version: str

    def score(self, text: str) -> float: ...


def doc_features(text: str | bytes | None, chars: bool = False) -> dict[str, float]:
    """Features of the words sentiment is scored on (the author's own words); ``chars`` adds the character view."""
    scored = clean(text).scored
    f = features(tokenize(scored))
    if chars:
        f.update(char_features(scored))
    return f


def score_text(model: SentimentModel, text: str | bytes | None) -> float:
    """The model's score of one text; 0.5 for a text with nothing to go on. Never raises."""
    try:
        return model.probability(doc_features(text, model.chars))
    except Exception as exc:  # noqa: BLE001 - one odd text must not stop a batch
        log.warning("nlp: scoring failed on a text, scoring neutral: %s: %s", exc.__class__.__name__, exc)
        return 0.5


class BayesScorer:
    """The project's scorer: ``score(text)``, ``score_many(texts)``; ``version`` names the model.

    ``score_many`` uses a pool of ``workers`` processes (each loads the model
    file once) for batches of at least ``batch_min`` texts; smaller batches, or
    ``workers <= 1``, are scored in this process.
    """

    def __init__(self, model: SentimentModel, *, model_path: str | Path | None = None, workers: int = 1,
                 batch_min: int = 200):
        self.model = model
        self.version = model.version
        self.model_path = Path(model_path) if model_path else None
        self.workers = workers
        self.batch_min = batch_min
        self._pool = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "BayesScorer":
        return cls(SentimentModel.load(path), model_path=path, **kwargs)

    def score(self, text: str | bytes | None) -> float:
        return score_text(self.model, text)

    def score_many(self, texts: Sequence[str]) -> list[float]:
        if self.workers > 1 and self.model_path is not None and len(texts) >= self.batch_min:
            if self._pool is None:
                from nlp.pool import WorkerPool

                self._pool = WorkerPool(self.workers, self.model_path)
            try:
                return self._pool.score(texts)
            except Exception as exc:  # noqa: BLE001 - a broken pool must not lose the batch
                log.warning("nlp: batch scoring in the pool failed, scoring in-process: %s", exc)
                self._pool.close()
                self._pool = None
        return [score_text(self.model, t) for t in texts]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def score_many(scorer: Scorer, texts: Sequence[str]) -> list[float]:
    """Batch scoring through any scorer (those without ``score_many`` score one by one)."""
    many = getattr(scorer, "score_many", None)
    return list(many(texts)) if many is not None else [scorer.score(t) for t in texts]


def model_path_for(config) -> Path | None:
    """The model file ``sentiment.model`` names (relative paths are relative to the data dir); None = default."""
    name = config.sentiment.model
    if name in (None, "", "default"):
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(config.data_dir) / path


def scorer_from_config(config) -> BayesScorer:
    """The scorer ``sentiment`` configures; the default model is built and cached on first use."""
    sent = config.sentiment
    path = model_path_for(config)
    if path is None:
        from nlp.train import default_model

        model, path = default_model(config.data_dir)
    else:
        model = SentimentModel.load(path)
    return BayesScorer(model, model_path=path, workers=sent.workers, batch_min=sent.batch_min)


class SnowNLPScorer:
    """``SnowNLP(text).sentiments`` with defined results for degenerate input."""

    def __init__(self) -> None:
        import snownlp
        from snownlp import SnowNLP

        self._snownlp = SnowNLP
        self.version = f"snownlp-{getattr(snownlp, '__version__', '0.12.3')}-default"
        self._lock = threading.Lock()  # SnowNLP's lazy model loading is not thread-safe

    def score(self, text: str) -> float:
        text = (text or "").strip()[:MAX_SCORED_CHARS]
        if not text:
            return 0.5
        try:
            with self._lock:
                value = float(self._snownlp(text).sentiments)
        except Exception as exc:  # noqa: BLE001 - a library failure on one text must not stop the batch
            log.warning("nlp: sentiment failed on a %d-char text, scoring neutral: %s", len(text), exc)
            return 0.5
        return min(1.0, max(0.0, value))


def label_for(score: float, *, negative_below: float, positive_above: float) -> str:
    if score < negative_below:
        return "negative"
    if score > positive_above:
        return "positive"
    return "neutral"
