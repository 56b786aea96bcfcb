"""The page outbox: a page is stored with the incident change that makes it (same transaction), so a
process dying between the two loses nothing, and two daemons making the same page store it once."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.incidents import IncidentManager
from alerts.notify import ORPHAN_AFTER, Notifier
from monitor.storage import deliveries
from monitor.storage.models import PageRow
from tests.factories import T0, make_match
from tests.servers import LocalServer, Response

S = timedelta(seconds=1)


def ok(_req) -> Response:
    return Response(200, b'{"ok": true}', {"Content-Type": "application/json"})


def hook(url: str) -> WebhookChannel:
    return WebhookChannel(WebhookConfig(name="ops", type="webhook", url=url, timeout="2s"))


def pages(db) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(r.alert_kind, r.status) for r in s.scalars(select(PageRow).order_by(PageRow.id))]


def test_a_page_staged_with_its_incident_is_sent_after_its_process_died(db):
    # the process opens the incident (page staged in that transaction) and dies before queueing it
    [alert] = IncidentManager(db).handle([make_match()], T0)
    assert alert.outbox_id is not None and pages(db) == [("firing", "new")]
    with LocalServer(ok) as server:
        channel = hook(f"{server.url}/hook")
        try:
            restarted = Notifier(db, [channel])
            assert restarted.run_due(T0 + ORPHAN_AFTER - S) == 0  # its own process may still queue it
            assert server.requests == []
            restarted.run_due(T0 + ORPHAN_AFTER)
        finally:
            channel.close()
    [request] = server.requests
    assert json.loads(request.body)["kind"] == "firing"
    assert "outbox_id" not in json.loads(request.body)
    assert pages(db) == [("firing", "delivered")]


def test_the_same_page_made_by_two_daemons_is_stored_and_sent_once(db):
    first, second = IncidentManager(db), IncidentManager(db)
    [alert] = first.handle([make_match()], T0)
    # the second daemon saw the same burst: the incident is found open, no second page
    assert second.handle([make_match()], T0 + S) == []
    # and a page with the same key (another daemon's reminder, say) is refused while one is waiting
    with db.session() as s:
        assert deliveries.stage(s, incident_id=alert.incident_id, alert_kind="firing", dedup_key=alert.dedup_key,
                                alert={}, now=T0) is None
    with LocalServer(ok) as server:
        channels = [hook(f"{server.url}/hook"), hook(f"{server.url}/hook")]
        try:
            Notifier(db, channels[:1]).deliver([alert], T0)
            Notifier(db, channels[1:]).deliver([alert], T0)  # a second daemon queueing the same staged page
        finally:
            for c in channels:
                c.close()
    assert len(server.requests) == 1
    assert pages(db) == [("firing", "delivered")]


def test_a_staged_page_no_channel_takes_is_dropped(db):
    [alert] = IncidentManager(db).handle([make_match()], T0)
    Notifier(db, []).deliver([alert], T0)
    assert pages(db) == []
    assert Notifier(db, []).run_due(T0 + ORPHAN_AFTER) == 0


def test_an_orphan_is_claimed_by_one_daemon_only(db):
    [alert] = IncidentManager(db).handle([make_match()], T0)
    with db.session() as s:
        [page] = deliveries.claim_orphans(s, T0 + ORPHAN_AFTER, T0)
        assert page.id == alert.outbox_id
    with db.session() as s:  # claimed (created_at moved): another daemon's look finds nothing
        assert deliveries.claim_orphans(s, T0 + ORPHAN_AFTER, T0) == []
