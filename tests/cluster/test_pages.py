"""No page is lost whichever step of "claim → send → record" a node dies at (kill -9, real processes).

The rules leader queues the page claimed by itself and sends it at once; it is killed
- before the send reached anyone: the request sits unread in the backlog of a port no receiver serves
  yet (the node is inside ``send``, but no receiver ever saw the page; the port is then reset and the
  real receiver started on it): the page arrives once;
- in the middle of the send: the receiver read the page and holds its answer: the page arrives twice,
  the one documented duplicate (delivery is at least once);
- after the send, before its record: the receiver answered 200, but the test holds a row lock on the
  deliveries so the node's record of the attempt waits (seen waiting in ``pg_stat_activity``): twice.

In each case the other node hands the dead node's claimed send back (``dead_after``, 5 s — the
delivery lease is a minute, so it is not the lease expiring) and sends it. The instants in between
(after the queueing, before the connect; after the answer, before the record's first statement) are
driven in-process in test_pages_inproc.py."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.cluster.harness import COMPLAINT, RULE, TOPIC, Blackhole, FeedServer, Nodes, Receiver, wait_until


def body(feeds: FeedServer, hook_url: str) -> str:
    return f"""
{feeds.http()}
scheduler: {{rules_interval: 1s}}
delivery: {{interval: 1s, lease: 60s}}
sources:
{feeds.sources("2s")}
topics:
  - {{name: {TOPIC}, keywords: [鲜丰]}}
rules:
  - {RULE}
channels:
  - {{name: hook, type: webhook, url: '{hook_url}', timeout: 30s}}
"""


class RecordBlocker:
    """Holds a row lock on every delivery from the moment the first page was read, so the sender's
    record of its attempt waits (a node stuck between the send and the record)."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        self.conn = None
        self.pid = None
        self.waiting: list[str] = []  # what the sender was stuck on

    def __call__(self, page: dict) -> None:
        if self.conn is None:
            self.conn = self.engine.connect()
            self.pid = self.conn.execute(text("SELECT pg_backend_pid()")).scalar()
            self.conn.execute(text("SELECT id FROM deliveries FOR UPDATE"))

    def recording_waits(self) -> bool:
        with self.engine.connect() as c:
            self.waiting = [q.split("(")[0].strip() for (q,) in c.execute(text(
                "SELECT query FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": self.pid})]
        return bool(self.waiting)

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
        self.engine.dispose()


def notifications(nodes: Nodes) -> list[tuple]:
    return [tuple(r) for r in nodes.sql("SELECT status, attempt FROM notifications WHERE channel = 'hook' ORDER BY id")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("step", ["before-send", "mid-send", "after-send"])
def test_kill_9_at_each_step_of_a_send_loses_no_page(step, pg, tmp_path, model_file):
    held = threading.Event()
    blackhole = Blackhole() if step == "before-send" else None
    blocker = RecordBlocker(pg.url) if step == "after-send" else None

    def before_answer(page: dict) -> None:
        if step == "mid-send" and not held.is_set():
            held.set()
            time.sleep(8)  # the sender waits for an answer it never gets: it is killed meanwhile
        elif blocker is not None:
            blocker(page)

    hook = None if blackhole else Receiver(before_answer=before_answer).__enter__()
    port = blackhole.port if blackhole else int(hook.url.rsplit(":", 1)[1])
    with FeedServer(4) as feeds:
        nodes = Nodes(tmp_path, pg, model_file, body(feeds, f"http://127.0.0.1:{port}/hook"))
        try:
            nodes.start("n1", "n2")
            wait_until(lambda: nodes.leader() and all(feeds.times(i) for i in range(4)), 30, "a leader, polls")
            feeds.add(1, COMPLAINT)
            [(sender,)] = wait_until(lambda: nodes.sql("SELECT claimed_by FROM deliveries"), 30, "the page queued")
            if step == "before-send":
                time.sleep(1)  # connected, request written into a backlog nobody reads
            elif step == "mid-send":
                wait_until(held.is_set, 10, "the page read by the receiver")
            else:
                wait_until(lambda: hook.answered and blocker.recording_waits(), 10, "the record waiting")
            assert notifications(nodes) == [] and (hook is None or len(hook.pages) == 1)
            killed = time.monotonic()
            nodes[sender].kill9()
            if blackhole is not None:
                blackhole.close()  # what the dead node wrote is reset, unread
                hook = Receiver(port=port).__enter__()
            if blocker is not None:
                blocker.release()
            want = 1 if step == "before-send" else 2
            wait_until(lambda: len(hook.firing()) >= want, 40, f"page {want} at the receiver")
            recovered = hook.arrived[-1] - killed
            wait_until(lambda: notifications(nodes) == [("sent", 1)], 10, "the send recorded")
            time.sleep(3)  # more delivery runs: nothing more may be sent
            codes = nodes.stop_all()
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.ensure_stopped()
            if hook is not None:
                hook.__exit__(None, None, None)
            if blocker is not None:
                blocker.release()
    firing = hook.firing()
    print(f"\n[cluster] kill -9 of {sender} {step}: the page reached the receiver again {recovered:.1f}s after "
          f"the kill{f' (its record was waiting in {blocker.waiting})' if blocker else ''}; "
          f"firing pages received {len(firing)} (lost 0, duplicates {len(firing) - 1})")
    assert len(firing) == want and len({p["incident_id"] for p in firing}) == 1
    assert notifications(nodes) == [("sent", 1)]
    assert nodes.sql("SELECT status FROM deliveries") == [("sent",)]
    assert set(codes) == {"n1", "n2"} - {sender} and set(codes.values()) == {0}
