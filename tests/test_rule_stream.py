"""The rules decide exactly as recorded on a four-day stream (see :mod:`tests.rule_stream`).

The decisions were recorded before the rules moved from rescanning their windows to running
counters; any change in what fires, when, how severe, with which figures, reason or evidence
is a behaviour change and fails here.
"""

import json

from tests.rule_stream import GOLDEN, run


def test_rule_decisions_match_the_recorded_stream():
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    decided = run()
    assert len(decided) == len(recorded) > 100
    for got, want in zip(decided, recorded):
        assert got == want
