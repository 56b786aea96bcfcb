"""Politeness holds across daemons: a slow-down or Retry-After one node was told is kept in the
database and honoured by whichever node polls the source next."""

from __future__ import annotations

import time

import pytest

from monitor.core.errors import Deferred, FetchError
from monitor.storage import cluster
from sources.http import HttpFetcher
from tests.servers import LocalServer, Response


def fetcher() -> HttpFetcher:
    return HttpFetcher("src", retries=0, slow_down_base=60, max_slow_down=3600, sleep=lambda _s: None)


def test_a_slow_down_told_to_one_fetcher_is_kept_by_the_next_one():
    with LocalServer(lambda req: Response(429)) as server:
        first = fetcher()
        with pytest.raises(FetchError):
            first.get(server.url)
        kept = first.politeness()
        assert kept["slow_level"] == 1 and kept["not_before"] > time.time() + 50
        other = fetcher()  # another node's object for the same source
        other.restore_politeness(kept)
        with pytest.raises(Deferred, match="slowing down after HTTP 429"):
            other.get(server.url)
        assert other.politeness()["slow_level"] == 1
    assert len(server.requests) == 1


def test_nothing_to_keep_after_a_success_and_garbage_costs_one_request():
    with LocalServer(lambda req: Response(200, b"ok")) as server:
        f = fetcher()
        f.restore_politeness({"slow_level": "x", "not_before": None})
        assert f.get(server.url).status == 200
        assert f.politeness() is None
        f.restore_politeness({"slow_level": 2, "not_before": time.time() - 5})  # expired: poll
        assert f.get(server.url).status == 200
    assert len(server.requests) == 2


def test_politeness_round_trips_through_the_source_state(db):
    from datetime import datetime, timezone

    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    with db.session() as s:
        assert cluster.claim_poll(s, "src", "rss", now, now, "node-a")
        cluster.keep_politeness(s, "src", {"slow_level": 3, "not_before": 1.5, "reason": "r"})
    with db.session() as s:
        assert cluster.politeness(s, "src") == {"slow_level": 3, "not_before": 1.5, "reason": "r"}


def test_a_hosts_limit_holds_across_nodes(db):
    from datetime import datetime, timedelta, timezone

    from monitor.app.cluster.hostslots import SharedHostSlots
    from monitor.core.cancel import CancelToken
    from sources.httpguard import HostLimits

    clock = [datetime(2026, 11, 30, 12, tzinfo=timezone.utc)]
    nodes = [HostLimits(), HostLimits()]  # two daemons' processes
    for i, limits in enumerate(nodes):
        limits.configure({"weibo.cn": 1}, {})
        limits.share(SharedHostSlots(db, f"node-{i}", lambda: clock[0]))
    token = CancelToken("test")
    assert nodes[0].acquire("weibo.cn", 2, 5.0, token)
    assert not nodes[1].acquire("weibo.cn", 2, 0.3, token)  # the one slot is node 0's
    assert nodes[1].acquire("other.cn", 2, 0.3, token)  # other hosts are not held up
    nodes[1].release("other.cn")
    nodes[0].release("weibo.cn")
    assert nodes[1].acquire("weibo.cn", 2, 0.3, token)  # given back: node 1 gets it at once
    # node 1 is killed mid-request: its slot expires after the request's deadline (0.3 s here)
    assert not nodes[0].acquire("weibo.cn", 2, 0.3, token)
    clock[0] += timedelta(seconds=6)
    assert nodes[0].acquire("weibo.cn", 2, 0.3, token)
    nodes[0].release("weibo.cn")
