"""Each step of "queue → claim → send → record" with a node dying exactly there, in-process: two
notifiers (nodes A and B) on one PostgreSQL database, A stopped dead at the step by an exception no
handler catches (what kill -9 leaves: its open transaction rolled back, nothing after it run). B then
does what a node does once A is found dead: hands A's claimed sends back (storage.cluster.hand_back,
run by the dispatcher after ``dead_after``) and runs the due deliveries. The real-process versions of
the send steps are in test_pages.py; the instants here (between the incident change and the queueing,
between the claim and the connect, between the answer and the record) cannot be hit from outside."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

import alerts.notify as notify
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.incidents import IncidentManager
from alerts.notify import Notifier
from monitor.storage import cluster, deliveries
from tests.factories import T0, make_match
from tests.servers import LocalServer, Response

S = timedelta(seconds=1)
ORPHAN_AFTER = getattr(notify, "ORPHAN_AFTER", timedelta(seconds=15))  # a page stored but never queued


class Killed(BaseException):
    """The node dies here: no ``except Exception`` on the way up stops it."""


class Hook:
    def __init__(self):
        self.pages: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, req) -> Response:
        with self._lock:
            self.pages.append(req.body)
        return Response(200, b"ok")


# step -> pages the receiver gets in the end (the send and record steps: the one documented duplicate)
STEPS = {"queue": 1, "claim": 1, "send": 2, "record": 2}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_node_dying_at_each_step_of_a_page_loses_no_page(step, pg, monkeypatch):
    hook = Hook()
    with LocalServer(hook) as server:
        def channel() -> WebhookChannel:
            return WebhookChannel(WebhookConfig(name="hook", type="webhook", url=f"{server.url}/hook", timeout="2s"))

        a_hook, b_hook = channel(), channel()
        real_send, real_record = a_hook.send, deliveries.record_attempt
        real_queue = {n: getattr(deliveries, n) for n in ("fill", "enqueue") if hasattr(deliveries, n)}

        def send(payload):
            if step == "claim":
                raise Killed
            real_send(payload)
            if step == "send":
                raise Killed

        def record(*args, **kwargs):
            raise Killed

        def queue(*args, **kwargs):
            raise Killed

        monkeypatch.setattr(a_hook, "send", send)
        if step == "record":
            monkeypatch.setattr(deliveries, "record_attempt", record)
        if step == "queue":
            for name in real_queue:
                monkeypatch.setattr(deliveries, name, queue)
        monkeypatch.setattr(deliveries, "CLAIMER", "A")
        alerts = IncidentManager(pg).handle([make_match()], T0)  # the leader's incident change (A)
        with pytest.raises(Killed):
            Notifier(pg, [a_hook]).deliver(alerts, T0)
        sent_by_a = len(hook.pages)

        monkeypatch.setattr(deliveries, "record_attempt", real_record)  # B is a healthy node
        for name, fn in real_queue.items():
            monkeypatch.setattr(deliveries, name, fn)
        monkeypatch.setattr(deliveries, "CLAIMER", "B")
        b = Notifier(pg, [b_hook])
        assert b.run_due(T0 + S) == 0  # what A claimed is A's until A is known dead
        with pg.session() as s:  # A stopped beating: the dispatcher forgets it and hands its work back
            cluster.hand_back(s, ["A"], T0 + 6 * S)
        later = T0 + 6 * S if step != "queue" else T0 + ORPHAN_AFTER + 6 * S
        b.run_due(later)
        sent_by_b = len(hook.pages) - sent_by_a
        b.run_due(later + 10 * S)  # nothing more
        a_hook.close()
        b_hook.close()

    with pg.session() as s:
        sent = s.execute(text("SELECT channel, status, attempt FROM notifications")).all()
        states = s.execute(text("SELECT status FROM deliveries")).all()
        incidents = s.execute(text("SELECT count(*) FROM incidents")).scalar()
    print(f"\n[cluster] node A dies at '{step}': sent by A {sent_by_a}, by B {sent_by_b}; "
          f"the receiver got {len(hook.pages)} page(s)")
    assert sent_by_a == (1 if step in ("send", "record") else 0)
    assert sent_by_b == 1
    assert len(hook.pages) == STEPS[step]  # never lost; sent twice only when A died after the send left
    assert [tuple(r) for r in sent] == [("hook", "sent", 1)] and [tuple(r) for r in states] == [("sent",)]
    assert incidents == 1
