"""Progress bars for long CLI runs (reports, training, replay): on stderr, only on a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[int], None]


def _nothing(_n: int = 1) -> None:
    return None


@contextmanager
def progress_display(console: Console, *, unit: str = "", quiet: bool = False) -> Iterator[Progress | None]:
    """A transient rich Progress counting ``unit``s, or None with ``quiet`` or off a terminal."""
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield bar


@contextmanager
def progress_counter(description: str, total: int, *, unit: str = "", quiet: bool = False,
                     console: Console | None = None) -> Iterator[Advance]:
    """Yield ``advance(n=1)``; a no-op with ``quiet``, off a terminal, or for an empty run."""
    with progress_display(console or Console(stderr=True), unit=unit, quiet=quiet or total <= 0) as bar:
        if bar is None:
            yield _nothing
            return
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
