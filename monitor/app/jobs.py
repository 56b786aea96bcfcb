"""The jobs running on one pipeline: counted, cancellable, and the last one closes a retired pipeline.

A reload replaces the pipeline while some of its jobs (a poll, a push being stored, a delivery)
may still run; they hold its HTTP clients, scoring pool and channels. So the old pipeline is
*retired*: its resources are closed by whichever job ends last (at once if none runs). Its
:attr:`Jobs.token` cancels its polls (shutdown and reload), see :mod:`monitor.core.cancel`.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from monitor.core.cancel import CancelToken


class Jobs:
    def __init__(self, name: str = "pipeline") -> None:
        self.token = CancelToken(name)
        self._cv = threading.Condition()
        self._running = 0
        self._on_idle: Callable[[], None] | None = None

    @property
    def running_count(self) -> int:
        with self._cv:
            return self._running

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._cv:
            self._running += 1
        try:
            yield
        finally:
            with self._cv:
                self._running -= 1
                fn = self._on_idle if self._running == 0 else None
                if fn is not None:
                    self._on_idle = None
                self._cv.notify_all()
            if fn is not None:
                fn()

    def when_idle(self, fn: Callable[[], None]) -> bool:
        """Call ``fn`` once no job runs: now (True) or when the last running job ends (False)."""
        with self._cv:
            if self._running:
                self._on_idle = fn
                return False
        fn()
        return True

    def wait_idle(self, timeout: float | None) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._running == 0, timeout=timeout)


def job(method: Callable) -> Callable:
    """Count a method of an object with a ``jobs`` attribute as a job while it runs (nested calls count once more)."""
    @functools.wraps(method)
    def counted(self, *args, **kwargs):
        with self.jobs.running():
            return method(self, *args, **kwargs)
    return counted
