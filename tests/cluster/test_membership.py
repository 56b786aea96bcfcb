"""Nodes join and leave without configuration: a node started later takes a share of the polls; a
node stopped with SIGTERM leaves at once — its row goes, the rules lease passes to another node and
its sources go on being polled — long before ``dead_after`` would have noticed it gone."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.cluster.harness import body, FeedServer, Nodes, wait_until

INTERVAL = 4.0
FEEDS = 40
DEAD_AFTER = 20.0  # long on purpose: a clean stop must not wait for it




def seen_polls(nodes: Nodes) -> set[tuple]:
    return set(map(tuple, nodes.sql("SELECT name, polled_by, poll_claimed_at FROM source_state "
                                                    "WHERE poll_claimed_at IS NOT NULL")))


@pytest.mark.timeout(150)
def test_a_late_node_takes_a_share_and_a_stopped_node_hands_over_at_once(pg, tmp_path, model_file):
    with FeedServer(FEEDS) as feeds:
        nodes = Nodes(tmp_path, pg, model_file, body(feeds, INTERVAL), dead_after=f"{DEAD_AFTER:g}s")
        try:
            nodes.start("n1", "n2")
            wait_until(lambda: all(feeds.times(i) for i in range(FEEDS)) and nodes.leader(), 30,
                       "every feed polled once and a rules leader")
            nodes.start("n3")  # joins: no config names it anywhere else
            joined = time.monotonic()
            polls: set[tuple] = set()
            while time.monotonic() < joined + 3 * INTERVAL:
                polls |= seen_polls(nodes)
                time.sleep(0.5)
            share = Counter(node for _, node, at in polls)
            late_polls = {name for name, node, _ in polls if node == "n3"}

            leader = nodes.leader()
            assert nodes.members() == {"n1", "n2", "n3"}
            its_sources = [int(n[1:]) for n, by in nodes.polled_by().items() if by == leader]
            stopped = time.monotonic()  # SIGTERM sent
            code, took = nodes[leader].terminate()
            members_after = nodes.members()  # read at once: the row must already be gone
            new_leader = wait_until(lambda: nodes.leader() not in (None, leader) and nodes.leader(), DEAD_AFTER,
                                    "another node leading the rules")
            handover = time.monotonic() - stopped
            wait_until(lambda: all(any(t > stopped for t in feeds.times(i)) for i in its_sources), DEAD_AFTER,
                       "the stopped node's sources polled by the others")
            resumed = max(min(t for t in feeds.times(i) if t > stopped) - stopped for i in its_sources)
            time.sleep(2)
            codes = nodes.stop_all()
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.ensure_stopped()
    print(f"\n[cluster] node n3 joined late: {len(late_polls)} of {FEEDS} sources polled by it within "
          f"{3 * INTERVAL:g}s (polls seen per node {dict(share)}); SIGTERM of the leader {leader}: exit {code} "
          f"in {took:.1f}s, rules led by {new_leader} {handover:.1f}s after the signal, its {len(its_sources)} sources "
          f"polled again within {resumed:.1f}s (dead_after {DEAD_AFTER:g}s)")
    assert len(late_polls) >= FEEDS // 10  # the late node took a share without any configuration
    assert code == 0 and leader not in members_after  # left the cluster, not waiting to be declared dead
    assert handover < DEAD_AFTER / 4  # the lease was handed over, not left to expire
    assert its_sources and resumed < DEAD_AFTER / 2  # its work went on at once
    assert set(codes.values()) == {0}
