"""Sentiment scoring: a score in [0, 1] (0 = very negative) and a label.

The spine uses SnowNLP's bundled model unchanged (``SnowNLP(text).sentiments``);
the scorer records its model version with every stored score so a later,
retrained model can be told apart.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)

# SnowNLP's segmenter is pure Python and quadratic-ish on long inputs; the
# sentiment of a post is decided well within its first couple of thousand chars.
MAX_SCORED_CHARS = 2000


class Scorer(Protocol):
    version: str

    def score(self, text: str) -> float: ...


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
