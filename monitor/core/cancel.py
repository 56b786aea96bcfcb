"""Cancelling running jobs: a token the daemon sets on shutdown or reload.

The code a job runs (an HTTP fetch, the scoring pool, the pipeline between its stages) finds the
job's token through a context variable, :func:`current`, so no layer in between needs a parameter
for it; outside a job it is a token that is never cancelled. Where a thread may be blocked (a
socket read), the blocking code registers a hook with :meth:`CancelToken.on_cancel` that unblocks
it (the HTTP layer shuts the socket down); everywhere else :meth:`CancelToken.check` between steps
is enough. A cancelled job raises :class:`monitor.core.errors.Cancelled`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from monitor.core.errors import Cancelled


class CancelToken:
    def __init__(self, name: str = "job") -> None:
        self.name = name
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Cancel every job holding this token: wake their waits and run their unblocking hooks."""
        with self._lock:
            self._event.set()
            hooks = list(self._hooks.values())
        for hook in hooks:
            hook()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the token was cancelled (call it between steps)."""
        if self._event.is_set():
            raise Cancelled(f"{self.name} cancelled")

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a cancel ends at once (with :class:`Cancelled`)."""
        if self._event.wait(max(0.0, seconds)):
            raise Cancelled(f"{self.name} cancelled")

    @contextmanager
    def on_cancel(self, hook: Callable[[], None]) -> Iterator[None]:
        """Run ``hook`` (from the cancelling thread) if the token is cancelled while inside the block."""
        with self._lock:
            key, self._next = self._next, self._next + 1
            self._hooks[key] = hook
            already = self._event.is_set()
        if already:
            hook()
        try:
            yield
        finally:
            with self._lock:
                self._hooks.pop(key, None)


NEVER = CancelToken("nothing")  # outside a job: never cancelled
_current: ContextVar[CancelToken] = ContextVar("cancel_token", default=NEVER)


def current() -> CancelToken:
    """The token of the job running in this thread (a never-cancelled one outside jobs)."""
    return _current.get()


@contextmanager
def scope(token: CancelToken) -> Iterator[CancelToken]:
    """Make ``token`` the current one for the code run inside the block."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)
