"""The cluster's shared state, as pure storage operations with time passed in: a source's period is
taken once, a lease is held by one node until it expires, dead nodes' unfinished work goes back, and
the leader's feed sees every stored mention once, even ones committed out of id order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor.app.cluster.feed import StoredFeed
from sqlalchemy.orm import make_transient

from monitor.storage import cluster, repo
from monitor.storage.models import MentionRow
from tests.factories import make_mention

T = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
S = timedelta(seconds=1)
TTL = timedelta(seconds=10)


def node(name: str, at: datetime) -> cluster.Node:
    return cluster.Node(f"id-{name}", name, "host", 1, "0.1", at, at, "running", {})


def test_a_source_is_polled_once_per_period_whoever_claims_it(db):
    with db.session() as s:
        assert cluster.claim_poll(s, "feed", "rss", T, T + 60 * S, "a")
        assert not cluster.claim_poll(s, "feed", "rss", T + S, T + 61 * S, "b")  # same period: refused
        assert cluster.due_sources(s, ["feed", "new"], T + 30 * S) == ["new"]
        assert cluster.claim_poll(s, "feed", "rss", T + 60 * S, T + 120 * S, "b")  # next period: b's
        [row] = cluster.schedule(s)
        assert (row.polled_by, row.next_poll_at) == ("b", T + 120 * S)


def test_a_lease_has_one_holder_until_it_expires(db):
    with db.session() as s:
        assert cluster.acquire(s, "rules", "id-a", "a", T, TTL)
        assert not cluster.acquire(s, "rules", "id-b", "b", T + 5 * S, TTL)
        assert cluster.renew(s, "rules", "id-a", T + 5 * S, TTL)  # now held until T+15
        assert not cluster.acquire(s, "rules", "id-b", "b", T + 14 * S, TTL)
        assert cluster.acquire(s, "rules", "id-b", "b", T + 16 * S, TTL)  # expired: taken over
        assert not cluster.renew(s, "rules", "id-a", T + 17 * S, TTL)  # the old holder learns it lost
        [lease] = cluster.leases(s)
        assert (lease.node_name, lease.expires_at) == ("b", T + 26 * S)
        cluster.release(s, "rules", "id-a")  # not a's any more: stays
        assert cluster.leases(s) != []


def test_dead_nodes_are_forgotten_and_their_unfinished_work_handed_back(db):
    with db.session() as s:
        cluster.register(s, node("a", T))
        cluster.register(s, node("b", T))
    with db.session() as s:
        assert cluster.heartbeat(s, "id-b", T + 8 * S, {"polls": 3})
        cluster.claim_poll(s, "done", "rss", T, T + 60 * S, "a")
        repo.record_poll_success(s, "done", "rss", repo.SourceState(), T + S, 0)
        cluster.claim_poll(s, "cut", "rss", T, T + 60 * S, "a")  # a died during this poll
        cluster.claim_poll(s, "other", "rss", T, T + 60 * S, "b")
    with db.session() as s:
        assert cluster.prune(s, T + 5 * S) == ["a"]
        assert cluster.hand_back(s, ["a"], T + 6 * S) == ["cut"]
        assert [n.name for n in cluster.nodes(s)] == ["b"]
        assert cluster.due_sources(s, ["done", "cut", "other"], T + 6 * S) == ["cut"]
        assert not cluster.heartbeat(s, "id-a", T + 7 * S, {})  # a, if it was only cut off, must rejoin


def test_the_feed_reads_each_stored_mention_once_even_out_of_id_order(db):
    feed = StoredFeed(db, hole_ttl=timedelta(seconds=60))
    feed.start(T)
    with db.session() as s:
        [a, b, c] = repo.insert_mentions(s, [make_mention(id=None, external_id=x) for x in "abc"])
    with db.session() as s:  # b's transaction has not committed yet: take its row out for now
        row = s.get(MentionRow, b.id)
        s.delete(row)
        s.flush()
        make_transient(row)
    first = feed.read(T + S)
    assert [m.external_id for m in first.mentions] == ["a", "c"] and set(feed.holes) == {b.id}
    with db.session() as s:  # b commits
        s.add(row)
    second = feed.read(T + 2 * S)
    assert [m.external_id for m in second.mentions] == ["b"] and feed.holes == {}
    assert feed.read(T + 3 * S).mentions == []


def test_a_hole_that_never_fills_is_forgotten(db):
    feed = StoredFeed(db, hole_ttl=timedelta(seconds=60))
    feed.start(T)
    with db.session() as s:
        [a, b] = repo.insert_mentions(s, [make_mention(id=None, external_id=x) for x in "ab"])
        s.delete(s.get(MentionRow, a.id))  # an id used up by a rollback
    assert [m.external_id for m in feed.read(T).mentions] == ["b"] and set(feed.holes) == {a.id}
    feed.read(T + 59 * S)
    assert set(feed.holes) == {a.id}
    feed.read(T + 61 * S)
    assert feed.holes == {}


def test_poll_outcomes_are_read_from_the_stored_source_state(db):
    feed = StoredFeed(db)
    feed.start(T)
    with db.session() as s:
        repo.record_poll_success(s, "ok", "rss", repo.SourceState(), T + S, 3)
        repo.record_poll_failure(s, "bad", "rss", "HTTP 500", T + S)
    batch = feed.read(T + 2 * S)
    assert sorted(batch.polls) == [("bad", False, "HTTP 500", 0), ("ok", True, None, 3)]
    assert feed.read(T + 3 * S).polls == []  # nothing new polled


def test_nodes_link_copies_of_what_other_nodes_stored(db, tmp_path):
    from monitor.app.pipeline import Pipeline
    from monitor.core.domain import SourceState
    from sources.base import FetchResult, RawItem
    from tests.source_helpers import make_pipeline

    feeds = [{"name": n, "type": "jsonl", "path": str(tmp_path / f"{n}.jsonl")} for n in ("weibo", "douyin")]
    a, b = (make_pipeline(db, feeds) for _ in range(2))
    for p in (a, b):
        p.evaluate = False  # nodes of a cluster
    text = "星河手机 X5 电池鼓包，售后拒绝退换，大家千万别买这款手机了"
    b.ingest("douyin", FetchResult([RawItem("d0", "别的内容，与此无关的一条")], SourceState()))  # b's index loads
    a.ingest("weibo", FetchResult([RawItem("w1", "开头"), RawItem("w2", text)], SourceState()))
    b.ingest("douyin", FetchResult([RawItem("d1", text)], SourceState()))  # a copy of a's post, stored by b
    with db.session() as s:
        rows = {r.external_id: r for r in s.query(MentionRow)}
    assert rows["d1"].story_id == rows["w2"].id  # b's story index learnt what a stored after it loaded
    assert isinstance(a, Pipeline)


def test_a_late_claim_does_not_push_the_next_polls_back(db):
    period = 60 * S
    with db.session() as s:
        assert cluster.claim_poll(s, "feed", "rss", T, T + period, "a", period=period)  # first: from now
        # claimed 1 s after it was due (a dispatch tick): still due at T+120, not T+121
        assert cluster.claim_poll(s, "feed", "rss", T + 61 * S, T + 121 * S, "a", period=period)
        assert cluster.schedule(s)[0].next_poll_at == T + 120 * S
        # with 3 s of jitter drawn: due + period + 3 s
        assert cluster.claim_poll(s, "feed", "rss", T + 120 * S, T + 183 * S, "a", period=period)
        assert cluster.schedule(s)[0].next_poll_at == T + 183 * S
        # far behind (the cluster was down): counted from now, no burst of catch-up polls
        assert cluster.claim_poll(s, "feed", "rss", T + 1000 * S, T + 1060 * S, "a", period=period)
        assert cluster.schedule(s)[0].next_poll_at == T + 1060 * S


def test_first_polls_are_spread_and_a_dead_nodes_host_slots_freed(db):
    with db.session() as s:
        assert cluster.unscheduled(s, ["a", "b"]) == ["a", "b"]
        cluster.plan_first_polls(s, {"a": ("rss", T), "b": ("rss", T + 15 * S)})
        cluster.plan_first_polls(s, {"a": ("rss", T + 99 * S)})  # planned already: kept
        assert cluster.unscheduled(s, ["a", "b"]) == []
        assert cluster.due_sources(s, ["a", "b"], T + S) == ["a"]
        assert cluster.take_host_slot(s, "weibo.cn", 1, "dead/1", T, T + 30 * S) == 0
        assert cluster.take_host_slot(s, "weibo.cn", 1, "live/1", T, T + 30 * S) is None
        cluster.hand_back(s, ["dead"], T + S)
        assert cluster.take_host_slot(s, "weibo.cn", 1, "live/1", T + S, T + 30 * S) == 0


def test_the_rules_lease_is_kept_by_its_own_thread_and_lost_to_a_takeover(db):
    from types import SimpleNamespace

    from monitor.app.cluster.leader import RulesLeader

    def leader(name: str) -> RulesLeader:
        return RulesLeader(SimpleNamespace(db=db, node_id=f"id-{name}", node_name=name), ttl=TTL)

    a, b = leader("a"), leader("b")
    a.keep_lease(T)
    b.keep_lease(T)
    assert a._holding and a._fresh() and not b._holding
    b.keep_lease(T + TTL + S)  # a stopped renewing (cut off): its lease expired, b takes it
    assert b._holding
    a.keep_lease(T + TTL + 2 * S)  # a comes back: learns it lost, and stops
    assert not a._holding and not a.leading
    a.run_once(T + TTL + 2 * S)  # and does not evaluate
    assert not a.leading


def test_a_leader_that_lost_the_lease_changes_no_incident(db):
    from functools import partial

    import pytest

    from alerts.incidents import IncidentManager
    from monitor.core.errors import LeaseLost
    from monitor.storage import incidents
    from tests.factories import TOPIC, make_match

    old, new = IncidentManager(db), IncidentManager(db)
    old.fence = partial(cluster.hold, name="rules", node_id="id-old")
    new.fence = partial(cluster.hold, name="rules", node_id="id-new")
    with db.session() as s:
        assert cluster.acquire(s, "rules", "id-old", "old", T, TTL)
    [alert] = old.handle([make_match()], T)  # fenced by the lease it holds: goes through
    with db.session() as s:  # it was cut off; its lease expired and another node took it
        assert cluster.acquire(s, "rules", "id-new", "new", T + TTL + S, TTL)
    with pytest.raises(LeaseLost):
        old.handle([make_match(kind="recovered")], T + TTL + 2 * S)  # its stale state changes nothing
    with pytest.raises(LeaseLost):
        old.reminders(T + TTL + 2 * S)
    with db.session() as s:
        assert incidents.active(s, TOPIC).id == alert.incident_id  # still open: the recovery was refused
    assert new.handle([make_match(kind="recovered")], T + TTL + 3 * S) != []  # the leader's goes through


def test_a_new_leaders_warm_up_and_feed_split_what_is_stored_during_it(db, tmp_path):
    from datetime import datetime, timezone

    from tests.source_helpers import make_pipeline

    now = datetime.now(timezone.utc)
    pipeline = make_pipeline(db, [{"name": "weibo", "type": "jsonl", "path": str(tmp_path / "w.jsonl")}],
                             rules=[{"name": "负面激增", "type": "negative_spike"}])
    with db.session() as s:
        repo.insert_mentions(s, [make_mention(id=None, external_id="before", published_at=now - 60 * S)])
    feed = StoredFeed(db)
    feed.start(now)  # the leader's feed starts first ...
    with db.session() as s:  # ... a node stores a mention while the warm-up runs ...
        repo.insert_mentions(s, [make_mention(id=None, external_id="during", published_at=now - 30 * S)])
    assert pipeline.warm_up(up_to_id=feed.last_id, skip_ids=set(feed.holes)) == 1  # ... not replayed ...
    assert [m.external_id for m in feed.read(now).mentions] == ["during"]  # ... but read by the feed, once


def test_a_transaction_left_open_by_a_node_cut_off_is_ended_by_the_server(db):
    import threading
    import time

    import pytest

    if db.is_sqlite:
        pytest.skip("a cluster runs on PostgreSQL")
    from monitor.storage import Database

    cut, other = Database(db.url), Database(db.url)
    try:
        for d in (cut, other):
            d.limit_sessions(1)
        now = datetime.now(timezone.utc)
        with other.session() as s:
            assert cluster.acquire(s, "rules", "id-cut", "cut", now - 20 * S, TTL)
        held = threading.Event()

        def stuck() -> None:  # fenced incident change, then the network goes: the transaction stays open
            try:
                with cut.session() as s:
                    cluster.hold(s, "rules", "id-cut")
                    held.set()
                    time.sleep(7)  # without the limits, the others would wait all this time (hours, for real)
                    cluster.hold(s, "rules", "id-cut")  # the server ended it meanwhile
            except Exception:  # noqa: BLE001 - expected: terminated by idle_in_transaction_session_timeout
                pass

        t = threading.Thread(target=stuck)
        t.start()
        held.wait(5)
        started = time.monotonic()
        took = None
        while took is None and time.monotonic() - started < 8:
            try:
                with other.session() as s:  # waits at most lock_timeout per try, never for hours
                    took = cluster.acquire(s, "rules", "id-ok", "ok", now, TTL)
            except Exception:  # noqa: BLE001 - lock_timeout: try again
                time.sleep(0.2)
        elapsed = time.monotonic() - started
        t.join()
        assert took is True and elapsed < 5
    finally:
        cut.dispose()
        other.dispose()
