"""kill -9 the node that leads the rules in the middle of a negative burst: the burst is paged once
(the new leader warms up from the database and finds the incident and its page), and the sources
the dead node was polling are polled again by the others — the gap measured and bounded by 30 s."""

from __future__ import annotations

import time

import pytest

from tests.cluster.harness import COMPLAINT, body, FeedServer, Nodes, Receiver, wait_until

INTERVAL = 5.0
FEEDS = 60
GAP_LIMIT = 30.0  # issue 14: a dead node's sources are polled by the others within 30 s




@pytest.mark.timeout(150)
def test_kill_9_of_the_rules_leader_mid_burst_pages_once_and_its_sources_resume_within_30s(pg, tmp_path,
                                                                                            model_file):
    # each answer takes 0.3 s, so the killed node has polls in flight (their jobs left "doing")
    with FeedServer(FEEDS, delay=0.3) as feeds, Receiver() as hook:
        nodes = Nodes(tmp_path, pg, model_file, body(feeds, INTERVAL, hook))
        try:
            nodes.start("n1", "n2", "n3")
            wait_until(lambda: all(feeds.times(i) for i in range(FEEDS)) and nodes.leader(), 30,
                       "every feed polled once and a rules leader")
            time.sleep(INTERVAL)  # steady state: each node polls its share
            feeds.add(3, f"{COMPLAINT} 第1条")  # the burst begins
            wait_until(lambda: nodes.sql("SELECT 1 FROM mentions WHERE text LIKE '%塌房%'"), 20,
                       "the first complaint stored")
            leader = nodes.leader()
            paged_before_kill = len(hook.firing())
            polled_by = nodes.polled_by()
            in_flight = nodes.sql("SELECT name FROM source_state WHERE polled_by = :n AND "
                                  "(last_poll_at IS NULL OR last_poll_at < poll_claimed_at)", n=leader)
            killed_at = time.monotonic()
            nodes[leader].kill9()
            feeds.add(3, f"{COMPLAINT} 第2条")  # the burst goes on while the cluster recovers
            feeds.add(11, f"{COMPLAINT} 第3条")
            orphans = [int(n[1:]) for n, by in polled_by.items() if by == leader]
            wait_until(lambda: all(any(t > killed_at for t in feeds.times(i)) for i in orphans), 40,
                       "every source of the dead node polled again")
            new_leader = wait_until(lambda: nodes.leader() not in (None, leader) and nodes.leader(), 20,
                                    "a new rules leader")
            wait_until(lambda: hook.firing(), 20, "the burst's page")
            published = feeds.published()
            wait_until(lambda: nodes.stored() >= published, 20, "every published item stored")
            time.sleep(4)  # the new leader's rule steps and delivery runs: nothing more may be paged
            codes = nodes.stop_all()
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.ensure_stopped()

    gaps = {i: min(t for t in feeds.times(i) if t > killed_at) - killed_at for i in orphans}
    spans = {i: min(t for t in feeds.times(i) if t > killed_at) - max(t for t in feeds.times(i) if t <= killed_at)
             for i in orphans}
    worst = max(gaps, key=gaps.get)
    firing = hook.firing()
    rows, distinct = nodes.mention_counts()
    print(f"\n[cluster] kill -9 of the rules leader {leader} mid-burst (paged before the kill: {paged_before_kill}): "
          f"{len(orphans)} of its sources ({len(in_flight)} with a poll in flight) resumed; kill → next poll "
          f"median {sorted(gaps.values())[len(gaps) // 2]:.1f}s max {gaps[worst]:.1f}s (s{worst}, polls "
          f"{spans[worst]:.1f}s apart); new leader {new_leader}; firing pages {len(firing)}; "
          f"incidents {nodes.incidents()}; mentions {rows} ({distinct} distinct)")
    assert orphans and max(gaps.values()) <= GAP_LIMIT
    assert len(nodes.incidents()) == 1
    # exactly once; the documented exception is a kill in the middle of the send (the receiver had it,
    # the node never recorded it): then the same incident's page arrives twice, never more
    assert len(firing) == 1 or (len(firing) == 2 and firing[0]["incident_id"] == firing[1]["incident_id"]), firing
    assert rows == distinct == len(published)  # the dead node's in-flight polls stored nothing twice
    assert all(code == 0 for code in codes.values()) and leader not in codes
