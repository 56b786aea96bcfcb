"""A process pool for batch work, so bursts use every core.

Workers are started with ``spawn`` (safe next to the daemon's threads) and load
jieba and the model once, in their initializer; after that each task is a chunk
of texts. Used for scoring a large poll and for featurising training data.

A worker exits as soon as its parent is gone (a ``kill -9`` of the daemon leaves
no orphans: a thread in each worker watches ``os.getppid()``), and a cancelled job
stops waiting for the pool between chunks (:mod:`monitor.core.cancel`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from monitor.core import cancel

log = logging.getLogger(__name__)
T = TypeVar("T")

_model = None  # the model of this worker process, loaded once by _init
PARENT_CHECK_EVERY = 0.5  # seconds: how soon a worker notices its parent died


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _exit_with_parent(parent: int) -> None:
    """Exit when the parent is gone: a dead parent's children are re-parented, so getppid() changes.

    (``prctl(PR_SET_PDEATHSIG)`` would fire when the parent *thread* that started the worker exits,
    which in the daemon is any scheduler thread, not only the process.)
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_EVERY)
    os._exit(0)


def _init(model_path: str | None, parent: int | None = None) -> None:
    global _model
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    from nlp.segment import _load

    _load()
    if model_path:
        from nlp.model import SentimentModel

        _model = SentimentModel.load(model_path)


def _score_chunk(texts: Sequence[str]) -> list[float]:
    from nlp.sentiment import score_text

    return [score_text(_model, t) for t in texts]


def _features_chunk(texts: Sequence[str]) -> list[dict[str, float]]:
    from nlp.sentiment import doc_features

    return [doc_features(t) for t in texts]


def _features_chars_chunk(texts: Sequence[str]) -> list[dict[str, float]]:
    from nlp.sentiment import doc_features

    return [doc_features(t, True) for t in texts]


def _counts_chunk(examples: Sequence) -> "object":
    from nlp.sentiment import doc_features
    from nlp.train import Counts

    counts = Counts()
    for e in examples:
        counts.add(doc_features(e.text), e.label, e.weight)
    return [counts]


class WorkerPool:
    """``WorkerPool(workers, model_path)``; the processes start on first use and stop on ``close()``."""

    def __init__(self, workers: int, model_path: str | Path | None = None):
        self.workers = max(1, workers)
        self.model_path = str(model_path) if model_path else None
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                     initializer=_init, initargs=(self.model_path, os.getpid()))
            return self._executor

    def map_chunks(self, fn: Callable[[Sequence], list[T]], texts: Sequence, chunk: int = 0) -> list[T]:
        if not texts:
            return []
        chunk = chunk or max(50, -(-len(texts) // (self.workers * 4)))
        parts = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
        token = cancel.current()
        out: list[T] = []
        for result in self._pool().map(fn, parts):  # leaving early cancels the chunks not started
            token.check()
            out.extend(result)
        return out

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.map_chunks(_score_chunk, list(texts))

    def features(self, texts: Sequence[str], chars: bool = False) -> list[dict[str, float]]:
        return self.map_chunks(_features_chars_chunk if chars else _features_chunk, list(texts))

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def featurize(texts: Sequence[str], workers: int | None = None, *, chars: bool = False,
              parallel_min: int = 4000) -> list[dict[str, float]]:
    """Features of many texts: in a pool when there are enough texts to pay for starting it."""
    from nlp.sentiment import doc_features

    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(texts) < parallel_min:
        return [doc_features(t, chars) for t in texts]
    try:
        with WorkerPool(workers) as pool:
            return pool.features(texts, chars)
    except Exception as exc:  # noqa: BLE001 - e.g. spawned from a script without a __main__ guard
        log.warning("nlp: process pool unavailable (%s: %s); featurising in this process",
                    exc.__class__.__name__, exc)
        return [doc_features(t, chars) for t in texts]


def count_features(examples: Sequence, workers: int | None = None, *, parallel_min: int = 4000):
    """Naive-Bayes counts of labelled examples, summed in a pool when there are enough of them."""
    from nlp.train import Counts

    workers = default_workers() if workers is None else workers
    if workers > 1 and len(examples) >= parallel_min:
        try:
            with WorkerPool(workers) as pool:
                total = Counts()
                for part in pool.map_chunks(_counts_chunk, list(examples), chunk=-(-len(examples) // workers)):
                    total.merge(part)
                return total
        except Exception as exc:  # noqa: BLE001
            log.warning("nlp: process pool unavailable (%s: %s); counting in this process",
                        exc.__class__.__name__, exc)
    from nlp.sentiment import doc_features

    counts = Counts()
    for e in examples:
        counts.add(doc_features(e.text), e.label, e.weight)
    return counts
