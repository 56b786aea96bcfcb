"""Hot lists beyond one process: a list's whole poll is kept in the database, so a cluster's rules
leader sees lists other nodes polled, and a restarted daemon takes the list's rules up where they were
(an entry that dropped off while it was down still recovers)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from monitor.app.cluster.feed import StoredFeed
from monitor.app.config import parse_config
from monitor.app.pipeline import Pipeline
from monitor.core.domain import SourceState
from monitor.storage.models import IncidentRow
from sources.base import FetchResult, RawItem
from tests.source_helpers import KeywordScorer

T = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
CONFIG = {
    "sources": [{"name": "微博热搜", "type": "hotlist", "preset": "weibo_hot", "rsshub": "http://127.0.0.1:9"}],
    "topics": [{"name": "鲜丰奶茶", "keywords": ["鲜丰"]}],
    "rules": [{"name": "上热搜", "type": "hotlist", "resolve_after": "1m"}],
}


def pipeline(db, clock, *, evaluate: bool = True) -> Pipeline:
    return Pipeline(parse_config(json.dumps(CONFIG, ensure_ascii=False)), db, clock=clock, scorer=KeywordScorer(),
                    channels=[], evaluate=evaluate)


def hot_list(with_brand: bool) -> FetchResult:
    entries = [("a", "明星官宣"), ("b", "天气突变")] + ([("x", "鲜丰奶茶喝出异物")] if with_brand else []) + [("c", "新片上映")]
    return FetchResult([RawItem(eid, text, title=text, extra={"rank": i + 1}) for i, (eid, text) in enumerate(entries)],
                       SourceState())


def incidents(db) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(r.rule, r.status) for r in s.scalars(select(IncidentRow).order_by(IncidentRow.id))]


def test_a_restarted_daemon_recovers_an_entry_that_dropped_off_meanwhile(db):
    now = [T]
    first = pipeline(db, lambda: now[0])
    first.ingest("微博热搜", hot_list(with_brand=True))
    assert incidents(db) == [("上热搜", "open")]
    # the daemon stops; the list is polled once more (by another daemon, or just before the stop)
    now[0] = T + timedelta(minutes=1)
    restarted = pipeline(db, lambda: now[0])
    restarted.warm_up()  # takes the list up from its latest stored poll: the brand at rank 3
    restarted.ingest("微博热搜", hot_list(with_brand=False))
    now[0] = T + timedelta(minutes=3)
    restarted.tick()
    assert incidents(db) == [("上热搜", "resolved")]


def test_the_rules_leader_sees_a_list_another_node_polled(db):
    now = [T]
    node = pipeline(db, lambda: now[0], evaluate=False)
    leader = pipeline(db, lambda: now[0])
    feed = StoredFeed(db)
    feed.start(T)
    node.ingest("微博热搜", hot_list(with_brand=True))
    assert incidents(db) == []  # a node only stores
    batch = feed.read(T)
    assert [name for name, _ in batch.snapshots] == ["微博热搜"]
    assert leader.evaluate_stored(batch.mentions, batch.polls, T, batch.snapshots) == 1
    assert incidents(db) == [("上热搜", "open")]
    assert feed.read(T + timedelta(seconds=1)).snapshots == []  # read once
