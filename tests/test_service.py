"""The service layer (monitor.app.service) as a front end calls it: validation, errors, time and actor passed in.

The CLI tests (test_cli*.py) cover the same operations through `monitor`; these pin the service's own
contract for the next front end (the web console)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from alerts.incidents import IncidentManager
from alerts.plans import PlanConfig
from monitor.app.config import parse_config
from monitor.app.lease import Lease
from monitor.app.service import Context, incidents, reports, sentiment, silences, sources, status
from monitor.core.errors import UsageError
from monitor.core.severity import Severity
from monitor.storage import repo
from monitor.storage.models import MentionRow
from sources.base import SourceState
from tests.factories import T0, TOPIC, make_match, make_mention

SEC = timedelta(seconds=1)


def ctx_for(db, yaml: str = "") -> Context:
    return Context(parse_config(f"storage:\n  url: {json.dumps(db.url)}\n" + yaml), db=db)


def open_incident(db, plans=()) -> int:
    [alert] = IncidentManager(db, plans=plans).handle([make_match(severity=Severity.III)], T0)
    return alert.incident_id


# -- the context -------------------------------------------------------------------------------------


def test_a_context_reads_its_config_and_opens_its_database_only_when_needed(tmp_path):
    def broken():
        raise AssertionError("the config was read")

    ctx = Context(loader=broken)
    with pytest.raises(UsageError, match="--out x.pdf: expected a file name ending in .html or .md"):
        reports.incident(ctx, 1, Path("x.pdf"), now=T0)
    with pytest.raises(UsageError, match="give either a labelled FILE or --feedback"):
        sentiment.evaluate(ctx)

    lazy = Context(parse_config(f"data_dir: {json.dumps(str(tmp_path / 'data'))}\n"))
    with pytest.raises(UsageError, match="--status: expected one of open, acknowledged, resolved, got 'burning'"):
        incidents.list_incidents(lazy, T0, status="burning")
    assert not (tmp_path / "data" / "monitor.db").exists()
    assert incidents.list_incidents(lazy, T0) == []  # first use: created and migrated
    assert (tmp_path / "data" / "monitor.db").exists()
    with pytest.raises(ValueError):
        Context()


# -- incidents ---------------------------------------------------------------------------------------


def test_incident_operations_take_the_actor_and_the_time(db):
    plan = PlanConfig(name="一般预案", severities=("III",), steps=[{"title": "核实来源", "owner": "舆情专员"}])
    iid = open_incident(db, plans=(plan,))
    ctx = ctx_for(db)
    at = T0 + 60 * SEC
    acked = incidents.acknowledge(ctx, iid, actor="小王", now=at)
    assert (acked.status, acked.acked_by, acked.acked_at) == ("acknowledged", "小王", at)
    with pytest.raises(UsageError, match="only open incidents can be acknowledged"):
        incidents.acknowledge(ctx, iid, actor="小王", now=at)
    incidents.add_note(ctx, iid, "已联系门店", actor="小王", now=at + SEC)
    incidents.assign(ctx, iid, "李经理", actor="小王", now=at + 2 * SEC)
    step = incidents.set_step(ctx, iid, 1, "skipped", actor="李经理", now=at + 3 * SEC)
    assert (step.status, step.done_by) == ("skipped", "李经理")
    resolved = incidents.resolve(ctx, iid, actor="李经理", now=at + 4 * SEC, note="已发声明")
    assert (resolved.status, resolved.resolved_at) == ("resolved", at + 4 * SEC)

    view = incidents.view(ctx, iid)
    assert [(e.kind, e.actor) for e in view.events] == [
        ("opened", "system"), ("plan", "system"), ("acknowledged", "小王"), ("note", "小王"), ("assigned", "小王"), ("step", "李经理"),
        ("resolved", "李经理")]
    with pytest.raises(UsageError, match=r"no incident #999"):
        incidents.view(ctx, 999)


def test_list_incidents_filters_by_status_and_a_since_duration(db):
    iid = open_incident(db)
    ctx = ctx_for(db)
    assert [i.id for i in incidents.list_incidents(ctx, T0 + timedelta(hours=1), since="2h")] == [iid]
    assert incidents.list_incidents(ctx, T0 + timedelta(hours=3), since="2h") == []
    assert [i.id for i in incidents.list_incidents(ctx, T0, status="open")] == [iid]
    assert incidents.list_incidents(ctx, T0, status="resolved") == []
    with pytest.raises(UsageError, match=r'--since: expected a duration like "24h", got \'yesterday\''):
        incidents.list_incidents(ctx, T0, since="yesterday")


# -- silences ----------------------------------------------------------------------------------------


def test_matcher_and_end_rules():
    assert silences.make_matcher(" 鲜丰 ", None, "iv") == {"topic": "鲜丰", "severity": "IV"}
    with pytest.raises(UsageError, match="at least one of --topic, --rule, --severity"):
        silences.make_matcher(None, " ", None)
    now = datetime(2026, 3, 15, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    assert silences.ends_at("2h", None, "Asia/Shanghai", now) == now + timedelta(hours=2)
    assert silences.ends_at(None, "09:30", "Asia/Shanghai", now) == datetime(2026, 3, 16, 1, 30, tzinfo=timezone.utc)
    assert silences.ends_at(None, "18:00", "Asia/Shanghai", now) == datetime(2026, 3, 15, 10, 0, tzinfo=timezone.utc)
    assert silences.parse_until("2026-03-15 18:00", "UTC", now) == datetime(2026, 3, 15, 18, 0, tzinfo=timezone.utc)
    for for_, until, message in [(None, None, "exactly one of"), ("2h", "18:00", "exactly one of"),
                                 ("0s", None, "positive duration"), ("soon", None, "--for: expected a duration")]:
        with pytest.raises(UsageError, match=message):
            silences.ends_at(for_, until, "Asia/Shanghai", now)


def test_add_warns_about_names_the_config_lacks_list_and_expire(db):
    ctx = ctx_for(db, "topics:\n  - {name: 鲜丰奶茶, keywords: [鲜丰]}\n")
    added = silences.add(ctx, topic="鲜丰奶荼", for_="1h", reason=" 发布会 ", actor="小王", now=T0)
    assert added.warnings == ["topic '鲜丰奶荼' is not in the config (鲜丰奶茶); the silence matches it exactly"]
    s = added.silence
    assert (s.matcher, s.starts_at, s.ends_at, s.reason, s.created_by) == (
        {"topic": "鲜丰奶荼"}, T0, T0 + timedelta(hours=1), "发布会", "小王")
    assert silences.add(ctx, topic="鲜丰奶茶", for_="1h", reason="x", actor="a", now=T0).warnings == []
    assert [x.id for x in silences.listing(ctx, T0 + 30 * 60 * SEC)] == [2, 1]
    with pytest.raises(UsageError, match="needs --reason"):
        silences.add(ctx, topic="鲜丰奶茶", for_="1h", reason=" ", actor="a", now=T0)

    ended = silences.expire(ctx, s.id, T0 + 60 * SEC)
    assert ended.ends_at == T0 + 60 * SEC and ended.state(T0 + 61 * SEC) == "expired"
    assert [x.id for x in silences.listing(ctx, T0 + 120 * SEC)] == [2]
    assert [x.id for x in silences.listing(ctx, T0 + 120 * SEC, include_expired=True)] == [2, 1]
    with pytest.raises(UsageError, match=r"silence #1 already expired at 06-11 12:01:00"):
        silences.expire(ctx, s.id, T0 + 120 * SEC)
    with pytest.raises(UsageError, match=r"^no silence #9$"):
        silences.expire(ctx, 9, T0)


# -- sources and status ------------------------------------------------------------------------------


SOURCES = ("sources:\n"
           "  - {name: a, type: rss, url: 'http://127.0.0.1:9/a'}\n"
           "  - {name: b, type: rss, url: 'http://127.0.0.1:9/b', expect_every: 1h}\n"
           "  - {name: c, type: rss, url: 'http://127.0.0.1:9/c'}\n")


def test_source_health_uses_the_threshold_of_the_rule_watching_each_source(db):
    ctx = ctx_for(db, SOURCES + "rules:\n  - {name: 源, type: source_health, failures: 2, sources: [a]}\n")
    with db.session() as s:
        repo.record_poll_failure(s, "a", "rss", "HTTP 503", T0)
        repo.record_poll_success(s, "b", "rss", SourceState(), T0 - timedelta(hours=2), 1)
        repo.record_poll_failure(s, "b", "rss", "timed out", T0)
        repo.record_poll_success(s, "gone", "rss", SourceState(), T0, 0)  # no longer configured
    views = {v.name: v for v in sources.source_views(ctx, T0)}
    assert list(views) == ["a", "b", "c", "gone"]
    a, b, c, gone = views.values()
    assert (a.state, a.consecutive_failures, a.health.threshold) == ("erroring", 1, 2)
    assert (b.state, b.stale_for, b.expect_every, b.health.threshold) == ("stale", timedelta(hours=2),
                                                                           timedelta(hours=1), 3)
    assert (c.state, c.polled, c.stale_for) == ("never polled", False, None)
    assert (gone.state, gone.configured) == ("ok", False)
    with db.session() as s:
        repo.record_poll_failure(s, "a", "rss", "HTTP 503", T0 + SEC)
    assert sources.source_views(ctx, T0 + SEC)[0].state == "failing"


def test_status_counts_incidents_and_judges_the_heartbeat(db):
    ctx = ctx_for(db, SOURCES)
    assert status.status(ctx, T0) == status.Status(None, {"open": 0, "acknowledged": 0, "resolved": 0}, 0, 0, [])
    iid = open_incident(db)
    incidents.acknowledge(ctx, iid, actor="小王", now=T0)
    IncidentManager(db).handle([make_match(topic="品牌B")], T0)
    Lease(db, info={"version": "9.9"}).acquire(T0)
    with db.session() as s:
        repo.record_poll_failure(s, "c", "rss", "HTTP 503", T0)

    now = T0 + 59 * SEC
    st = status.status(ctx, now)
    assert st.alive and st.daemon.version == "9.9" and st.daemon.heartbeat_age_s == 59.0
    assert st.incidents == {"open": 1, "acknowledged": 1, "resolved": 0}
    assert [(v.name, v.state) for v in st.sources] == [("c", "erroring")]  # polled ones only, by name
    later = status.status(ctx, T0 + 60 * SEC)
    assert not later.alive and later.daemon is not None  # the lease is there, its holder silent for the ttl


# -- labels ------------------------------------------------------------------------------------------


def test_label_a_mention(db):
    with db.session() as s:
        [m] = repo.insert_mentions(s, [make_mention(external_id="m1", topics=(TOPIC,))])
    ctx = ctx_for(db)
    fb = sentiment.label(ctx, m.id, "负面", actor="小王", now=T0)
    assert (fb.label, fb.actor, fb.at, fb.mention_id) == ("negative", "小王", T0, m.id)
    with pytest.raises(UsageError, match=r"no mention #999"):
        sentiment.label(ctx, 999, "negative", actor="小王", now=T0)
    with pytest.raises(UsageError, match=r"label: expected one of negative, neutral, positive"):
        sentiment.label(ctx, m.id, "angry", actor="小王", now=T0)
    with db.session() as s:
        assert s.get(MentionRow, m.id).sentiment_label == m.label  # the stored label is not rewritten
