"""A restart warms the rules up from per-minute counts plus the last window of mentions, and lands
in exactly the state a rule fed every stored mention would be in."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from alerts.engine import RuleEngine
from monitor.app.config import parse_config
from monitor.app.pipeline import Pipeline
from monitor.storage import counts, repo
from tests import rule_stream


class ConstantScorer:
    version = "test-constant"

    def score(self, text: str) -> float:
        return 0.5


# every rule type of the recorded stream, plus negative_spike measuring 舆情热度 (heat comes back from the counts)
RULES = [*rule_stream.RULES_CONFIG, {"name": "热度激增", "type": "negative_spike", "measure": "heat",
                                     "reference": "2h", "seasonal_days": 1}]


def config():
    doc = {"storage": {"url": "sqlite://"}, "sources": [],
           "topics": [{"name": t, "keywords": [t]} for t in rule_stream.TOPICS], "rules": RULES}
    return parse_config(json.dumps(doc, ensure_ascii=False))


def test_warm_up_from_counts_reaches_the_state_of_a_full_replay(db):
    now = rule_stream.START + timedelta(days=2, hours=20, minutes=37)  # in the middle of the first burst
    history = [m for _, m in rule_stream.mentions() if m.published_at <= now]
    history = [replace(m, reposts=50) if i % 7 == 0 else m for i, m in enumerate(history)]  # some reach: heat > 1
    with db.session() as s:
        for i in range(0, len(history), 500):
            counts.add(s, repo.insert_mentions(s, history[i:i + 500]))
    pipeline = Pipeline(config(), db, clock=lambda: now, scorer=ConstantScorer(), channels=[])
    replayed = pipeline.warm_up()
    assert 0 < replayed < len(history) / 20  # most of the history came as counts

    reference = RuleEngine(config().rules, rule_stream.TOPICS, started_at=now)
    reference.add_data([m for m in history if m.published_at >= now - reference.history_needed()], now)
    warmed = {(r.topic, r.config.name): r for r in pipeline.rules.rules}
    spikes = 0
    for want in reference.rules:
        got = warmed[(want.topic, want.config.name)]
        assert got._state.severity == want._state.severity, (want.topic, want.config.name)
        if hasattr(want, "measure"):
            assert got.measure(now) == want.measure(now), (want.topic, want.config.name)
        if want.config.type == "negative_spike":
            spikes += 1
            i = want.model.index(now)
            # (heat sums are floats added in another order: equal to the last few bits)
            assert [round(got.model.count(j), 9) for j in range(i - 300, i + 1)] == \
                [round(want.model.count(j), 9) for j in range(i - 300, i + 1)]
            assert [None if z is None else round(z, 9) for z in (s.z(i) for s in got.scales)] == \
                [None if z is None else round(z, 9) for z in (s.z(i) for s in want.scales)]
            if want.heats is not None:  # reposted negatives weigh more than 1, from the counts too
                assert [round(got.heats.count(j), 6) for j in range(i - 1000, i + 1)] == \
                    [round(want.heats.count(j), 6) for j in range(i - 1000, i + 1)]
                assert sum(want.heats.count(j) for j in range(i - 1000, i + 1)) > \
                    sum(want.negatives.count(j) for j in range(i - 1000, i + 1))
    assert spikes == 7
    assert any(r._state.severity is not None for r in reference.rules if r.config.type == "negative_spike")
    pipeline.close()


def test_the_migration_counts_the_mentions_already_stored(db):
    """An upgraded database keeps its baselines: migration 0010 counts the mentions of the last 30 days."""
    from datetime import datetime, timezone

    from alembic import command
    from alembic.config import Config

    from monitor.storage.database import MIGRATIONS

    def migrate(revision: str, down: bool = False) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

    shift = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2) - rule_stream.START
    history = [replace_time(m, shift, i) for i, (_, m) in enumerate(rule_stream.mentions()[:3000])]
    with db.session() as s:
        stored = repo.insert_mentions(s, history)
        counts.add(s, stored)
        far = datetime(2000, 1, 1, tzinfo=timezone.utc)
        expected = list(counts.since(s, far, far + timedelta(days=365 * 100)))
    assert len(expected) > 500
    migrate("0009", down=True)
    migrate("head")
    with db.session() as s:
        migrated = list(counts.since(s, far, far + timedelta(days=365 * 100)))
    assert [(c.topic, c.platform, c.minute, c.negative, c.total) for c in migrated] == \
        [(c.topic, c.platform, c.minute, c.negative, c.total) for c in expected]
    assert [round(c.negative_heat, 6) for c in migrated] == [round(c.negative_heat, 6) for c in expected]
    assert sum(c.negative_heat for c in expected) > 2 * sum(c.negative for c in expected)  # reach counted
    # summed per 5 minutes in SQL (what a restart reads when its rules count in 5-minute buckets)
    five = timedelta(minutes=5)
    by_step: dict = {}
    for c in expected:
        key = (counts.step_start(c.minute, five), c.topic, c.platform)
        n, t, h = by_step.get(key, (0, 0, 0.0))
        by_step[key] = (n + c.negative, t + c.total, h + c.negative_heat)
    with db.session() as s:
        summed = list(counts.since(s, far, far + timedelta(days=365 * 100), five))
    assert {(c.minute, c.topic, c.platform): (c.negative, c.total, round(c.negative_heat, 6)) for c in summed} == \
        {k: (n, t, round(h, 6)) for k, (n, t, h) in by_step.items()}
    assert len(summed) < len(expected)


def replace_time(m, shift, i):
    """``m`` moved by ``shift``, with some reach (the heat the migration computes in SQL)."""
    from dataclasses import replace

    reach = {"author_followers": i * 997 % 3_000_000, "reposts": i % 7 * 300, "likes": i % 5 * 1000} if i % 3 else {}
    return replace(m, published_at=m.published_at + shift, fetched_at=m.fetched_at + shift, **reach)
