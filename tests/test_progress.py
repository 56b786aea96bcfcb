"""Progress bars for long runs: shown on a terminal, silent otherwise; replay and training report progress."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from monitor.app.progress import progress_counter
from monitor.app.replay import replay_counts
from nlp.datasets import Example
from nlp.train import NBLR_EPOCHS, train
from tests.factories import T0


def test_counter_draws_on_a_terminal_and_is_silent_otherwise():
    buf = io.StringIO()
    with progress_counter("replaying", 3, unit="buckets", console=Console(file=buf, force_terminal=True)) as advance:
        for _ in range(3):
            advance(1)
    assert "replaying" in buf.getvalue() and "3/3" in buf.getvalue()
    piped = io.StringIO()
    with progress_counter("replaying", 3, console=Console(file=piped, force_terminal=False)) as advance:
        advance(3)
    with progress_counter("replaying", 3, quiet=True, console=Console(file=piped, force_terminal=True)) as advance:
        advance(3)
    assert piped.getvalue() == ""


def test_replay_and_training_advance_once_per_unit_of_work():
    steps: list[int] = []
    counts = [(T0 + i * timedelta(minutes=5), 1) for i in range(12)]
    replay_counts(counts, advance=steps.append)
    assert sum(steps) == 12

    epochs: list[None] = []
    examples = [Example("好吃 推荐", 1), Example("难吃 投诉", 0)] * 5
    train(examples, algorithm="nblr", workers=1, on_epoch=lambda: epochs.append(None))
    assert len(epochs) == NBLR_EPOCHS
