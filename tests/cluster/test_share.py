"""Three nodes share 200 feeds: every item stored once, every feed polled on schedule by one node
at a time, the work spread over the nodes, and one negative burst paged once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.cluster.harness import COMPLAINT, RULE, TOPIC, FeedServer, Nodes, Receiver, wait_until

INTERVAL = 5.0
RUN = 30.0  # seconds of shared work measured
BURST_FEED = 7


def body(feeds: FeedServer, hook: Receiver) -> str:
    return f"""
scheduler: {{rules_interval: 2s}}
sources:
{feeds.sources(f"{INTERVAL:g}s")}
topics:
  - {{name: {TOPIC}, keywords: [鲜丰]}}
rules:
  - {RULE}
channels:
  - {{name: hook, type: webhook, url: '{hook.url}/hook'}}
"""


@pytest.mark.timeout(150)
def test_three_nodes_share_200_feeds_store_each_item_once_and_page_a_burst_once(pg, tmp_path, model_file):
    with FeedServer(200) as feeds, Receiver() as hook:
        nodes = Nodes(tmp_path, pg, model_file, body(feeds, hook))
        try:
            begun = time.monotonic()
            nodes.start("n1", "n2", "n3")
            t0 = time.monotonic()
            started = t0 - begun
            polls: set[tuple[str, str, object]] = set()  # (source, node, claimed at): each poll seen
            burst_at = None
            while (now := time.monotonic()) < t0 + RUN:
                k = int(now - t0)
                if k < RUN - 8 and k % 2 == 0:  # a tenth of the feeds grow now and then
                    for i in range(0, 200, 10):
                        feeds.add(i, f"{TOPIC}门店又上新了 {i} {k} {now}")
                if burst_at is None and now > t0 + 8:
                    burst_at = now
                    for n in range(3):
                        feeds.add(BURST_FEED, f"{COMPLAINT} 第{n}条")
                polls |= set(map(tuple, nodes.sql("SELECT name, polled_by, poll_claimed_at FROM source_state")))
                time.sleep(max(0.0, 1 - (time.monotonic() - now)))
            published = feeds.published()
            wait_until(lambda: nodes.stored() >= published, 20, "every published item stored")
            wait_until(lambda: hook.firing(), 20, "the burst's page")
            time.sleep(3)  # later rule steps and delivery runs: nothing more may be paged
            codes = nodes.stop_all()
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.ensure_stopped()
        hits = {i: feeds.times(i) for i in range(200)}

    rows, distinct = nodes.mention_counts()
    gaps = sorted(b - a for ts in hits.values() for a, b in zip(ts, ts[1:]))
    window = sorted(b - a for ts in hits.values() for a, b in zip(ts, ts[1:]) if t0 + INTERVAL <= a and b <= t0 + RUN)
    counts = [sum(1 for t in ts if t0 <= t <= t0 + RUN) for ts in hits.values()]
    share = Counter(node for _, node, _ in polls)
    print(f"\n[cluster] 3 nodes, 200 feeds every {INTERVAL:g}s: {rows} mentions stored ({distinct} distinct, "
          f"{len(published)} published); polls per feed in {RUN:g}s min {min(counts)} max {max(counts)}; "
          f"gap between polls of one feed min {gaps[0]:.2f}s, in the steady window median "
          f"{window[len(window) // 2]:.2f}s p99 {window[int(len(window) * .99)]:.2f}s max {window[-1]:.2f}s; "
          f"started in {started:.1f}s; polls seen per node "
          f"{dict(share)}; firing pages {len(hook.firing())}; incidents {nodes.incidents()}")
    assert rows == distinct == len(published) and nodes.stored() == published  # every item stored once
    assert gaps[0] >= 0.8 * INTERVAL  # never two polls of one feed within an interval, whichever nodes
    assert min(counts) >= int(RUN / (INTERVAL + 2))  # every feed polled on schedule (dispatch lag ≤ 2s)
    assert len(share) >= 2 and set(share) <= {"n1", "n2", "n3"}  # the work is spread
    assert len(nodes.incidents()) == 1
    firing = hook.firing()
    assert len(firing) == 1 and firing[0]["rule"] == "塌房"
    assert codes == {"n1": 0, "n2": 0, "n3": 0}
