"""source_health (数据源异常): failing or stale sources become one incident and recover by
themselves — as a pure rule, through the engine, through the pipeline against a real local
server, and in `monitor sources`; the health verdict (sources.health.assess) they all share."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from alerts.engine import RuleEngine
from alerts.rules.source_health import SourceHealthConfig, SourceHealthRule
from sources.health import Polls, SourceHealth, assess
from monitor.cli import app
from monitor.storage.models import IncidentEventRow, IncidentRow, SourceStateRow
from tests.factories import T0
from tests.servers import LocalServer, Response
from tests.source_helpers import Clock, make_pipeline

ITEM = ("<item><title>星河手机 第{n}条</title><description>星河手机 第{n}条内容</description>"
        "<guid>g{n}</guid><pubDate>Tue, 11 Jun 2024 11:00:00 +0800</pubDate></item>")


def feed(*ns: int) -> bytes:
    return ('<rss version="2.0"><channel><title>t</title>' + "".join(ITEM.format(n=n) for n in ns)
            + "</channel></rss>").encode("utf-8")


def rule(**kw) -> SourceHealthRule:
    expect = kw.pop("expect_every", None)
    return SourceHealthRule(SourceHealthConfig(name="数据源异常", type="source_health", **kw), "微博", T0,
                            expect_every=expect)


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


# --- the rule ---------------------------------------------------------------------------


def test_fires_once_after_n_consecutive_failures_and_recovers_on_success():
    r = rule(failures=3)
    assert r.observe_poll(False, "HTTP 503", 0, at(1)) == []
    assert r.observe_poll(False, "HTTP 503", 0, at(2)) == []
    [fired] = r.observe_poll(False, "HTTP 503 Service Unavailable", 0, at(3))
    assert fired.kind == "firing" and fired.topic == "微博" and fired.rule == "数据源异常"
    assert fired.group_key == "微博|数据源异常"
    assert fired.reason == "数据源「微博」连续 3 次抓取失败（HTTP 503 Service Unavailable），舆情监测可能存在盲区"
    assert fired.numbers["consecutive_failures"] == 3 and fired.numbers["last_error"] == "HTTP 503 Service Unavailable"
    assert r.observe_poll(False, "timed out", 0, at(4)) == []  # still one incident
    [recovered] = r.observe_poll(True, None, 0, at(5))
    assert recovered.kind == "recovered" and recovered.reason == "数据源「微博」已恢复：抓取恢复正常"
    assert r.observe_poll(True, None, 0, at(6)) == []


def test_a_success_between_failures_resets_the_count():
    r = rule(failures=2)
    r.observe_poll(False, "x", 0, at(1))
    r.observe_poll(True, None, 0, at(2))
    assert r.observe_poll(False, "x", 0, at(3)) == []


def test_stale_after_expect_every_without_new_items_and_recovers_with_one():
    r = rule(expect_every=timedelta(minutes=30))
    assert r.observe_poll(True, None, 5, at(0)) == []
    assert r.observe_poll(True, None, 0, at(20)) == []  # polls fine, nothing new yet
    assert r.tick(at(30)) == []
    [stale] = r.tick(at(31))
    assert stale.kind == "firing" and "已 31m 没有新数据（预期至少每 30m 一条）" in stale.reason
    assert r.tick(at(60)) == [] and r.observe_poll(True, None, 0, at(61)) == []
    [back] = r.observe_poll(True, None, 2, at(62))
    assert back.kind == "recovered" and "收到新数据" in back.reason


def test_never_stale_without_expect_every_and_stale_from_start_when_nothing_ever_came():
    assert rule().tick(at(10_000)) == []
    r = rule(expect_every=timedelta(hours=1))
    [m] = r.tick(at(61))
    assert m.kind == "firing"


def test_restore_continues_an_outage_after_restart():
    r = rule(failures=3)
    r.restore(failures=5, last_error="HTTP 503", last_success_at=None, last_item_at=None, first_poll_at=at(-60))
    [m] = r.tick(at(1))
    assert m.kind == "firing" and "连续 5 次" in m.reason


def test_health_is_one_function_ok_erroring_failing_stale_never_polled():
    polls = Polls(consecutive_failures=0, last_item_at=at(0), first_poll_at=at(-60))
    hour = timedelta(hours=1)
    assert assess(None, expect_every=hour, now=at(1)) == SourceHealth("never polled", 0, 3, None, hour)
    assert assess(polls, expect_every=hour, now=at(60)).state == "ok"
    stale = assess(polls, expect_every=hour, now=at(61))
    assert (stale.state, stale.stale_for, stale.alerting) == ("stale", timedelta(minutes=61), True)
    assert assess(polls, expect_every=None, now=at(10_000)).state == "ok"  # never stale without expect_every
    erroring = assess(Polls(2, at(0), at(0)), expect_every=None, now=at(1))
    assert (erroring.state, erroring.failing, erroring.alerting) == ("erroring", False, False)
    assert assess(Polls(3, at(0), at(0)), expect_every=None, now=at(1)).state == "failing"
    assert assess(Polls(1, at(0), at(0)), expect_every=None, now=at(1), threshold=1).state == "failing"
    # failing wins over stale, stale over erroring; staleness counts from the first poll until an item
    assert assess(Polls(3, None, at(0)), expect_every=hour, now=at(90)).state == "failing"
    assert assess(Polls(1, None, at(0)), expect_every=hour, now=at(90)).state == "stale"
    assert assess(Polls(0, None, at(5)), expect_every=hour, now=at(0)).stale_for == timedelta(0)  # clock skew


def test_the_rule_pages_exactly_when_health_says_alerting():
    r = rule(failures=2, expect_every=timedelta(minutes=30))
    outcomes = [(True, 3), (False, 0), (True, 0), (False, 0), (False, 0), (False, 0), (True, 0), (True, 1)]
    for minute, (ok, stored) in enumerate(outcomes, start=1):
        r.observe_poll(ok, None if ok else "x", stored, at(minute * 7))
        assert r.firing == r.health(at(minute * 7)).alerting


# --- the engine ------------------------------------------------------------------------------


class Src:
    def __init__(self, name, expect_every=None):
        self.name, self.expect_every = name, expect_every


def test_engine_adds_the_default_rule_for_every_source_unless_configured():
    engine = RuleEngine([], ["话题"], T0, sources=[Src("a"), Src("b", timedelta(hours=1))])
    assert sorted((r.source, r.config.name, r.expect_every) for r in engine.source_rules) == [
        ("a", "数据源异常", None), ("b", "数据源异常", timedelta(hours=1))]
    assert engine.rules == []  # topic rules untouched
    custom = SourceHealthConfig(name="源告警", type="source_health", sources=("b",), failures=1)
    engine = RuleEngine([custom], ["话题"], T0, sources=[Src("a"), Src("b")])
    # configuring a rule for b must not leave a unwatched: it keeps the default (3 failures)
    assert sorted((r.source, r.config.name) for r in engine.source_rules) == [("a", "数据源异常"), ("b", "源告警")]
    [m] = engine.observe_poll("b", False, "boom", 0, at(1))
    assert m.topic == "b" and engine.observe_poll("a", False, "boom", 0, at(1)) == []
    assert [m.topic for m in engine.observe_poll("a", False, "boom", 0, at(2)) +
            engine.observe_poll("a", False, "boom", 0, at(3))] == ["a"]
    everyone = SourceHealthConfig(name="全部", type="source_health", failures=2)
    engine = RuleEngine([everyone], ["话题"], T0, sources=[Src("a"), Src("b")])
    assert sorted((r.source, r.config.name) for r in engine.source_rules) == [("a", "全部"), ("b", "全部")]


# --- through the pipeline, against a real server ------------------------------------------------


def test_a_source_that_starts_failing_makes_one_incident_and_one_recovery(db):
    mode = {"status": 200}
    with LocalServer(lambda req: Response(mode["status"], feed(1, 2) if mode["status"] == 200 else b"down")) as server:
        clock = Clock(T0)
        pipeline = make_pipeline(db, [{"name": "微博", "type": "rss", "url": server.url + "/feed", "retries": 0},
                                      {"name": "other", "type": "rss", "url": server.url + "/other", "retries": 0}],
                                 clock=clock)
        assert pipeline.poll("微博").stored == 2
        mode["status"] = 503
        reports = []
        for _ in range(6):
            clock.advance(minutes=1)
            reports.append(pipeline.poll("微博"))
        assert [r.alerts for r in reports] == [0, 0, 1, 0, 0, 0]
        assert all(r.error == "HTTP 503 Service Unavailable" for r in reports)
        mode["status"] = 200
        clock.advance(minutes=1)
        healed = pipeline.poll("微博")
        clock.advance(minutes=1)
        again = pipeline.poll("微博")
    assert (healed.error, healed.alerts, again.alerts) == (None, 1, 0)
    with db.session() as s:
        [incident] = s.scalars(select(IncidentRow))
        assert (incident.topic, incident.rule, incident.rule_type) == ("微博", "数据源异常", "source_health")
        assert incident.status == "resolved" and incident.resolved_by == "system"
        assert incident.opened_at == T0 + timedelta(minutes=3) and incident.resolved_at == T0 + timedelta(minutes=7)
        kinds = [e.kind for e in s.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident.id))]
        assert kinds[0] == "opened" and kinds.count("opened") == 1 and kinds.count("resolved") == 1
        assert "连续 3 次抓取失败（HTTP 503 Service Unavailable）" in incident.reason
        assert s.get(SourceStateRow, "微博").consecutive_failures == 0


def test_a_stale_source_is_an_incident_until_new_items_arrive(db):
    served = {"items": (1,)}
    with LocalServer(lambda req: Response(200, feed(*served["items"]))) as server:
        clock = Clock(T0)
        pipeline = make_pipeline(db, [{"name": "论坛", "type": "rss", "url": server.url, "expect_every": "30m"}],
                                 clock=clock)
        assert pipeline.poll("论坛").stored == 1
        clock.advance(minutes=20)
        assert pipeline.poll("论坛").stored == 0 and pipeline.tick() == 0
        clock.advance(minutes=11)
        assert pipeline.tick() == 1  # stale: 31 minutes without a new item
        assert pipeline.tick() == 0
        served["items"] = (1, 2)
        clock.advance(minutes=1)
        assert pipeline.poll("论坛").alerts == 1  # the new item resolves it
    with db.session() as s:
        [incident] = s.scalars(select(IncidentRow))
        assert incident.status == "resolved" and "已 31m 没有新数据" in incident.reason


# --- monitor sources ---------------------------------------------------------------------------------


def test_monitor_sources_shows_health_and_stale_for(db, tmp_path):
    from monitor.storage import repo
    from sources.base import SourceState

    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"storage:\n  url: {json.dumps(db.url)}\nsources:\n"
        "  - {name: quiet, type: rss, url: 'http://127.0.0.1:9/a', expect_every: 1h}\n"
        "  - {name: broken, type: rss, url: 'http://127.0.0.1:9/b'}\n"
        "  - {name: fresh, type: rss, url: 'http://127.0.0.1:9/c', expect_every: 1h}\n"
        "  - {name: new, type: jsonfeed, url: 'http://127.0.0.1:9/d'}\n"
        "  - {name: flaky, type: rss, url: 'http://127.0.0.1:9/e'}\n"
        "rules:\n  - {name: 数据源异常, type: source_health, failures: 1, sources: [broken]}\n", encoding="utf-8")
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    with db.session() as s:
        repo.record_poll_success(s, "quiet", "rss", SourceState(), now - timedelta(hours=3), 4)
        repo.record_poll_success(s, "quiet", "rss", SourceState(), now - timedelta(minutes=1), 0)
        repo.record_poll_failure(s, "broken", "rss", "connection refused: http://127.0.0.1:9/b", now)
        repo.record_poll_success(s, "fresh", "rss", SourceState(), now - timedelta(minutes=5), 2)
        repo.record_poll_failure(s, "flaky", "rss", "timed out", now)
    result = CliRunner().invoke(app, ["sources", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["quiet"]["health"] == "stale" and rows["quiet"]["stale_for"] == "3h"
    assert rows["quiet"]["expect_every"] == "1h" and rows["quiet"]["items_stored"] == 4
    # failing at the threshold of the rule watching the source (1 here) …
    assert rows["broken"]["health"] == "failing" and rows["broken"]["last_error"].startswith("connection refused")
    # … below it (no rule watches flaky: the default 3) erroring: no incident yet, but not ok
    assert (rows["flaky"]["health"], rows["flaky"]["consecutive_failures"], rows["flaky"]["failure_threshold"]) == (
        "erroring", 1, 3)
    assert rows["fresh"]["health"] == "ok" and rows["fresh"]["stale_for"] == "5m"
    assert rows["new"]["health"] == "never polled" and rows["new"]["stale_for"] is None
    table = CliRunner().invoke(app, ["sources", "--config", str(path)], env={"COLUMNS": "200"})
    assert "stale for" in table.output and "3h (expect ≤1h)" in table.output


def test_a_health_rule_naming_an_unknown_source_is_a_config_error():
    import pytest

    from monitor.app.config import parse_config
    from monitor.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"rules\[0\].sources\[0\]: unknown source '微薄'; known: 微博"):
        parse_config("sources:\n  - {name: 微博, type: rss, url: 'http://127.0.0.1:9/'}\n"
                     "rules:\n  - {name: 数据源异常, type: source_health, sources: [微薄]}\n")
