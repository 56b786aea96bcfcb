"""A rich progress bar for long report runs — on stderr, only when it is a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence, TypeVar

from rich.console import Console

from monitor.app.progress import progress_display
from monitor.app.reports.scan import Track, no_progress

T = TypeVar("T")


@contextmanager
def progress_bar(console: Console, *, quiet: bool = False) -> Iterator[Track]:
    """Yield a ``track(items, description)`` wrapper that advances a bar per item.

    Disabled (a plain pass-through) with ``quiet`` or when ``console`` is not
    a terminal, so pipes, logs and CI stay clean.
    """
    with progress_display(console, unit="days", quiet=quiet) as bar:
        if bar is None:
            yield no_progress
            return

        def track(items: Sequence[T], description: str) -> Iterable[T]:
            task = bar.add_task(description, total=len(items))
            for item in items:
                yield item
                bar.advance(task)

        yield track
