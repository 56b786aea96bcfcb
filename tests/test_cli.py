"""The `monitor` command line, through typer's runner against a real database."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from alerts.incidents import IncidentManager
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.cli import app
from monitor.storage import repo
from sources.base import SourceState

runner = CliRunner()
T0 = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def config_file(db, tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"storage:\n  url: {json.dumps(db.url)}\n"
        "sources:\n  - name: weibo\n    type: rss\n    url: http://127.0.0.1:9/feed\n"
        "topics:\n  - name: 鲜丰奶茶\n    keywords: [鲜丰]\n",
        encoding="utf-8",
    )
    return path


def open_incident(db) -> int:
    match = Match("firing", "负面激增", "negative_spike", "鲜丰奶茶", T0, Severity.III,
                  "「鲜丰奶茶」负面声量激增", {"current_negative": 30, "ratio": 9.5})
    [alert] = IncidentManager(db).handle([match], T0)
    return alert.incident_id


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_check_config_reports_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("rules:\n  - name: r\n    type: negative_spike\n    window: ten\n", encoding="utf-8")
    result = cli("check-config", str(bad))
    assert result.exit_code == 2
    assert result.output.strip() == f'error: {bad}: rules[0].window: expected a duration like "10m", got "ten"'
    assert "Traceback" not in result.output


def test_check_config_ok(config_file):
    result = cli("check-config", str(config_file))
    assert result.exit_code == 0, result.output
    assert "ok — 1 sources, 1 topics, 0 rules, 0 channels" in result.output


def test_run_without_config_explains(monkeypatch):
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    result = cli("run")
    assert result.exit_code == 1
    assert "no config" in result.output and "--demo" in result.output


def test_incident_lifecycle_through_cli(db, config_file):
    incident_id = open_incident(db)
    c = ("--config", str(config_file))

    listed = cli("incidents", "list", *c, "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["id"], row["severity"], row["status"], row["topic"]) == (incident_id, "III", "open", "鲜丰奶茶")

    table = cli("incidents", *c)  # bare `incidents` lists too
    assert "负面激增" in table.output and "未处理" in table.output

    assert cli("incidents", "ack", str(incident_id), *c, "--as", "小王").exit_code == 0
    again = cli("incidents", "ack", str(incident_id), *c, "--as", "小王")
    assert again.exit_code == 1 and "only open incidents can be acknowledged" in again.output
    assert cli("incidents", "note", str(incident_id), "已联系门店核实", *c, "--as", "小王").exit_code == 0
    assert cli("incidents", "resolve", str(incident_id), *c, "--as", "李经理", "--note", "已发声明").exit_code == 0

    shown = json.loads(cli("incidents", "show", str(incident_id), *c, "--json").output)
    assert shown["status"] == "resolved" and shown["acked_by"] == "小王" and shown["resolved_by"] == "李经理"
    assert [(e["kind"], e["actor"]) for e in shown["timeline"]] == [
        ("opened", "system"), ("acknowledged", "小王"), ("note", "小王"), ("resolved", "李经理")]
    assert shown["timeline"][2]["message"] == "已联系门店核实"

    assert cli("incidents", "list", *c, "--status", "open", "--json").output.strip() == "[]"
    text = cli("incidents", "show", str(incident_id), *c)
    assert "时间线" in text.output and "已发声明" in text.output


def test_unknown_incident_and_bad_options(config_file):
    c = ("--config", str(config_file))
    result = cli("incidents", "show", "999", *c)
    assert result.exit_code == 1 and result.output.strip() == "error: no incident #999"
    result = cli("incidents", "list", *c, "--status", "burning")
    assert result.exit_code == 1 and "--status: expected one of open, acknowledged, resolved" in result.output


def test_sources_shows_health(db, config_file):
    with db.session() as s:
        repo.record_poll_failure(s, "weibo", "rss", "HTTP 503 Service Unavailable", T0)
    result = cli("sources", "--config", str(config_file), "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    # one failed poll is not an outage yet: failing, like the source_health rule, takes 3 (its `failures`)
    assert row["name"] == "weibo" and row["health"] == "erroring" and row["consecutive_failures"] == 1
    assert row["last_error"] == "HTTP 503 Service Unavailable"
    with db.session() as s:
        for _ in range(2):
            repo.record_poll_failure(s, "weibo", "rss", "HTTP 503 Service Unavailable", T0)
    [row] = json.loads(cli("sources", "--config", str(config_file), "--json").output)
    assert (row["health"], row["consecutive_failures"], row["failure_threshold"]) == ("failing", 3, 3)
    with db.session() as s:
        repo.record_poll_success(s, "weibo", "rss", SourceState(etag='"abc"'), T0, 3)
    [row] = json.loads(cli("sources", "--config", str(config_file), "--json").output)
    assert (row["health"], row["items_stored"], row["last_error"]) == ("ok", 3, None)


def test_plan_steps_assign_and_since_through_cli(db, tmp_path):
    from alerts.plans import PlanConfig

    plan = PlanConfig(name="一般预案", severities=("III",), steps=[{"title": "核实来源", "owner": "舆情专员"},
                                                                {"title": "回复用户", "owner": "客服"}])
    match = Match("firing", "负面激增", "negative_spike", "鲜丰奶茶", T0, Severity.III, "「鲜丰奶茶」负面声量激增", {})
    [alert] = IncidentManager(db, plans=(plan,)).handle([match], T0)
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"storage:\n  url: {json.dumps(db.url)}\n", encoding="utf-8")
    c = ("--config", str(cfg))
    iid = str(alert.incident_id)

    assert cli("incidents", "step", iid, "2", "done", *c, "--as", "小王").output.strip() == f"#{iid} step 2 (回复用户): done"
    assert cli("incidents", "assign", iid, "李经理", *c, "--as", "小王").exit_code == 0
    missing = cli("incidents", "step", iid, "7", *c)
    assert missing.exit_code == 1 and "has no step 7 (steps 1–2)" in missing.output

    shown = json.loads(cli("incidents", "show", iid, *c, "--json").output)
    assert [(s["position"], s["status"], s["done_by"]) for s in shown["steps"]] == [(1, "pending", None), (2, "done", "小王")]
    assert [e["kind"] for e in shown["timeline"]][-2:] == ["step", "assigned"]

    # T0 is long ago: --since 24h excludes it, a wide window includes it
    assert json.loads(cli("incidents", "list", *c, "--since", "24h", "--json").output) == []
    assert [i["id"] for i in json.loads(cli("incidents", "list", *c, "--since", "5000d", "--json").output)] == [int(iid)]
    bad = cli("incidents", "list", *c, "--since", "yesterday")
    assert bad.exit_code == 1 and 'expected a duration like "24h"' in bad.output
