"""IncidentManager against a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from alerts.incidents import IncidentManager
from monitor.core.severity import Severity
from monitor.core.errors import StorageError, UsageError
from monitor.storage.models import IncidentEventRow, IncidentRow
from monitor.storage.repo import insert_mentions
from tests.factories import T0, TOPIC, make_match, make_mention

MIN = timedelta(minutes=1)
GROUP = TOPIC  # incidents group by topic by default (incidents.group_by)


def incidents(db) -> list[IncidentRow]:
    with db.session() as s:
        return list(s.scalars(select(IncidentRow).order_by(IncidentRow.id)))


def events(db, incident_id: int) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id)
                         .order_by(IncidentEventRow.id))
        return [(e.kind, e.actor) for e in rows]


def open_incident(db, manager: IncidentManager | None = None) -> int:
    manager = manager or IncidentManager(db)
    [alert] = manager.handle([make_match()], T0)
    return alert.incident_id


def test_firing_opens_one_incident_with_opened_event_and_returns_a_firing_alert(db):
    with db.session() as s:
        stored = insert_mentions(s, [make_mention(score=0.02), make_mention(score=0.08)])
    evidence = (*stored, make_mention())  # the last one has no id: not cited
    ids = [m.id for m in stored]
    match = make_match(evidence=evidence, severity=Severity.III)
    manager = IncidentManager(db, tz="Asia/Shanghai")

    alerts = manager.handle([match], T0)

    assert len(alerts) == 1
    alert = alerts[0]
    [row] = incidents(db)
    assert (alert.kind, alert.incident_id, alert.severity, alert.topic, alert.rule) == (
        "firing", row.id, Severity.III, TOPIC, "负面激增")
    assert alert.title == "「品牌A」负面激增"
    assert alert.reason == match.reason
    assert alert.at == T0
    assert alert.numbers == match.numbers
    assert alert.top_mentions == evidence
    assert alert.ack_command == f"monitor incidents ack {row.id}"
    assert alert.dedup_key == f"incident-{row.id}-firing-III"

    assert (row.group_key, row.topic, row.rule, row.rule_type, row.severity, row.status) == (
        GROUP, TOPIC, "负面激增", "negative_spike", "III", "open")
    assert (row.title, row.reason, row.numbers) == ("「品牌A」负面激增", match.reason, match.numbers)
    assert row.opened_at == T0 and row.updated_at == T0
    assert row.opened_at.tzinfo is not None
    assert (row.resolved_at, row.acked_at, row.last_notified_at) == (None, None, None)

    _, timeline, cited = manager.show(row.id)
    assert [(e.kind, e.actor, e.message, e.at) for e in timeline] == [("opened", "system", match.reason, T0)]
    assert timeline[0].data == {"numbers": match.numbers, "mention_ids": ids, "rule": "负面激增"}
    assert [(m.id, m.score, m.text) for m in cited] == [(m.id, m.score, m.text) for m in stored]


def test_second_firing_same_severity_adds_evidence_and_no_alert(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    later = make_match(at=T0 + MIN, numbers={"current_negative": 14, "window": "10m"}, reason="仍在激增")

    assert manager.handle([later], T0 + MIN) == []

    [row] = incidents(db)
    assert (row.id, row.severity, row.status, row.updated_at) == (incident_id, "IV", "open", T0 + MIN)
    assert row.numbers == {"current_negative": 14, "window": "10m"}
    assert events(db, incident_id) == [("opened", "system"), ("evidence", "system")]


def test_higher_severity_escalates_and_updates_the_incident(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    worse = make_match(severity=Severity.II, reason="更严重了", numbers={"current_negative": 60, "window": "10m"})

    alerts = manager.handle([worse], T0 + 2 * MIN)

    assert [(a.kind, a.incident_id, a.severity, a.reason) for a in alerts] == [
        ("escalated", incident_id, Severity.II, "更严重了")]
    assert alerts[0].dedup_key == f"incident-{incident_id}-escalated-II"
    [row] = incidents(db)
    assert (row.severity, row.reason, row.status) == ("II", "更严重了", "open")
    _, timeline, _ = manager.show(incident_id)
    assert [e.kind for e in timeline] == ["opened", "escalated"]
    assert timeline[1].message == "级别由一般（IV级）升为重大（II级）：更严重了"

    # a lower severity afterwards is only evidence
    assert manager.handle([make_match(severity=Severity.III)], T0 + 3 * MIN) == []
    assert incidents(db)[0].severity == "II"


def test_recovered_resolves_as_system_and_returns_a_resolved_alert(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    recovered = make_match(kind="recovered", reason="已回落", numbers={"current_negative": 0, "window": "10m"})

    alerts = manager.handle([recovered], T0 + 20 * MIN)

    assert [(a.kind, a.incident_id, a.severity, a.reason, a.top_mentions) for a in alerts] == [
        ("resolved", incident_id, Severity.IV, "已回落", ())]
    [row] = incidents(db)
    assert (row.status, row.resolved_by, row.resolved_at, row.updated_at) == (
        "resolved", "system", T0 + 20 * MIN, T0 + 20 * MIN)
    assert events(db, incident_id) == [("opened", "system"), ("resolved", "system")]
    # a second recovered has nothing to resolve
    assert manager.handle([recovered], T0 + 21 * MIN) == []


def test_restarted_manager_does_not_page_again_for_the_same_firing(db):
    incident_id = open_incident(db, IncidentManager(db))

    restarted = IncidentManager(db)
    assert restarted.handle([make_match()], T0 + 5 * MIN) == []

    assert [r.id for r in incidents(db)] == [incident_id]
    assert events(db, incident_id) == [("opened", "system"), ("evidence", "system")]


def test_flare_up_soon_after_resolve_reopens_the_incident_and_pages(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    manager.acknowledge(incident_id, "alice", T0 + MIN)
    manager.resolve(incident_id, "alice", T0 + 2 * MIN)

    [alert] = manager.handle([make_match(severity=Severity.III)], T0 + 30 * MIN)  # within reopen_within (2h)
    assert (alert.kind, alert.incident_id, alert.severity) == ("reopened", incident_id, Severity.III)
    assert alert.dedup_key == f"incident-{incident_id}-reopened-III-r1"
    [row] = incidents(db)
    assert (row.status, row.reopened_count, row.acked_by, row.resolved_at) == ("open", 1, None, None)
    assert events(db, incident_id)[-1] == ("reopened", "system")


def test_restart_replay_of_a_burst_staff_already_resolved_is_noted_not_paged(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    manager.resolve(incident_id, "alice", T0 + MIN)

    restarted = IncidentManager(db)  # warm-up replays the same burst (within its 10m window)
    assert restarted.handle([make_match()], T0 + 5 * MIN, replay=True) == []
    assert events(db, incident_id)[-1] == ("evidence", "system")
    assert [r.status for r in incidents(db)] == ["resolved"]


def test_a_burst_long_after_resolve_opens_a_new_incident(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    manager.resolve(incident_id, "alice", T0 + MIN)

    [alert] = manager.handle([make_match()], T0 + 3 * 60 * MIN)
    assert alert.kind == "firing" and alert.incident_id != incident_id
    assert [r.status for r in incidents(db)] == ["resolved", "open"]


def test_staff_actions_record_events_with_the_actor(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)

    acked = manager.acknowledge(incident_id, "alice", T0 + MIN, note="公关组跟进中")
    assert (acked.status, acked.acked_by, acked.acked_at) == ("acknowledged", "alice", T0 + MIN)
    manager.add_note(incident_id, "bob", T0 + 2 * MIN, "已联系客户")
    resolved = manager.resolve(incident_id, "carol", T0 + 3 * MIN)
    assert (resolved.status, resolved.resolved_by, resolved.resolved_at) == ("resolved", "carol", T0 + 3 * MIN)

    row, timeline, _ = manager.show(incident_id)
    assert [(e.kind, e.actor, e.message) for e in timeline[1:]] == [
        ("acknowledged", "alice", "公关组跟进中"),
        ("note", "bob", "已联系客户"),
        ("resolved", "carol", "已处置完毕"),
    ]
    assert row.updated_at == T0 + 3 * MIN
    assert [r.id for r in manager.list(status="resolved")] == [incident_id]
    assert manager.list(status="open") == []


def test_invalid_staff_actions_raise_usage_error(db):
    manager = IncidentManager(db)
    incident_id = open_incident(db, manager)
    manager.resolve(incident_id, "alice", T0 + MIN)

    with pytest.raises(UsageError, match="resolved"):
        manager.acknowledge(incident_id, "bob", T0 + 2 * MIN)
    with pytest.raises(UsageError, match="already resolved"):
        manager.resolve(incident_id, "bob", T0 + 2 * MIN)
    with pytest.raises(UsageError, match="no incident #9999"):
        manager.acknowledge(9999, "bob", T0 + 2 * MIN)
    with pytest.raises(UsageError):
        manager.add_note(9999, "bob", T0 + 2 * MIN, "?")
    assert events(db, incident_id) == [("opened", "system"), ("resolved", "alice")]


def _row(status: str, **kw) -> IncidentRow:
    return IncidentRow(group_key=GROUP, topic=TOPIC, rule="负面激增", rule_type="negative_spike", severity="IV",
                       status=status, title="t", reason="r", numbers={}, opened_at=T0, updated_at=T0, **kw)


def test_partial_unique_index_rejects_a_second_active_incident_for_a_group(db):
    with db.session() as s:  # resolved incidents do not count
        s.add_all([_row("resolved", resolved_at=T0), _row("resolved", resolved_at=T0), _row("open")])

    with pytest.raises(StorageError, match="IntegrityError"):
        with db.session() as s:
            s.add(_row("acknowledged"))

    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(IncidentRow)) == 3
        assert s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.status != "resolved")) == 1
