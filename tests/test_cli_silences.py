"""`monitor silences add|list|expire` through typer's runner against a real database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from alerts.notify import silence_matches
from monitor.core.severity import Severity
from monitor.cli import app
from monitor.storage.models import SilenceRow
from tests.factories import make_alert

runner = CliRunner()
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def c(db, tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"storage:\n  url: {json.dumps(db.url)}\n"
        "topics:\n  - name: 鲜丰奶茶\n    keywords: [鲜丰]\n"
        "rules:\n  - name: 负面激增\n    type: negative_spike\n",
        encoding="utf-8")
    return ("--config", str(path))


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def listed(c, *flags) -> list[dict]:
    result = cli("silences", "list", *c, "--json", *flags)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_for_a_duration_then_list_and_it_silences_that_topic(c):
    before = datetime.now(timezone.utc)
    result = cli("silences", "add", *c, "--topic", "鲜丰奶茶", "--for", "2h", "--reason", "发布会期间", "--as", "小王")
    after = datetime.now(timezone.utc)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("silence #1: topic=鲜丰奶茶 until ") and result.output.strip().endswith("— 发布会期间")
    [row] = listed(c)
    assert (row["id"], row["matcher"], row["state"], row["reason"], row["created_by"]) == (
        1, {"topic": "鲜丰奶茶"}, "active", "发布会期间", "小王")
    ends = datetime.fromisoformat(row["ends_at"])
    assert before + timedelta(hours=2) <= ends <= after + timedelta(hours=2)
    assert before <= datetime.fromisoformat(row["starts_at"]) <= after
    # the stored matcher is what delivery understands
    assert silence_matches(row["matcher"], make_alert(topic="鲜丰奶茶"))
    assert not silence_matches(row["matcher"], make_alert(topic="别的品牌"))

    table = runner.invoke(app, ["silences", "list", *c], env={"COLUMNS": "100"}, catch_exceptions=False)
    assert table.exit_code == 0 and "生效中" in table.output and "发布会期间" in table.output
    assert f"{ends.astimezone(SH):%m-%d %H:%M}" in table.output


def test_add_until_a_local_time_with_rule_and_severity(c):
    tomorrow = (datetime.now(SH) + timedelta(days=1)).replace(second=0, microsecond=0)
    until = tomorrow.strftime("%Y-%m-%d %H:%M")
    result = cli("silences", "add", *c, "--rule", "负面激增", "--severity", "iv", "--until", until,
                 "--reason", "压测", "--as", "ops")
    assert result.exit_code == 0, result.output
    assert f"until {tomorrow:%m-%d %H:%M}:00 (Asia/Shanghai)" in result.output
    [row] = listed(c)
    assert row["matcher"] == {"rule": "负面激增", "severity": "IV"}
    assert datetime.fromisoformat(row["ends_at"]) == tomorrow.astimezone(timezone.utc)
    assert silence_matches(row["matcher"], make_alert(rule="负面激增", severity=Severity.IV))
    assert not silence_matches(row["matcher"], make_alert(rule="负面激增", severity=Severity.III))
    # a bare clock time is the next time the clock shows it
    result = cli("silences", "add", *c, "--topic", "鲜丰奶茶", "--until", "09:30", "--reason", "夜间")
    assert result.exit_code == 0, result.output
    ends = datetime.fromisoformat(next(r for r in listed(c) if r["reason"] == "夜间")["ends_at"]).astimezone(SH)
    assert (ends.hour, ends.minute) == (9, 30) and timedelta(0) < ends - datetime.now(SH) <= timedelta(days=1)
    # an explicit offset is taken as given
    result = cli("silences", "add", *c, "--topic", "鲜丰奶茶", "--until", "2099-01-01T00:00+00:00", "--reason", "x")
    assert result.exit_code == 0, result.output
    assert datetime.fromisoformat(listed(c)[0]["ends_at"]) == datetime(2099, 1, 1, tzinfo=timezone.utc)


def test_expire_ends_it_and_list_hides_it_unless_all(db, c):
    now = datetime.now(timezone.utc)
    with db.session() as s:
        s.add(SilenceRow(matcher={"topic": "旧话题"}, starts_at=now - timedelta(hours=3),
                         ends_at=now - timedelta(hours=1), reason="上周", created_by="alice", created_at=now))
    assert cli("silences", "add", *c, "--topic", "鲜丰奶茶", "--for", "30m", "--reason", "演练").exit_code == 0
    assert [r["reason"] for r in listed(c)] == ["演练"]
    assert [(r["reason"], r["state"]) for r in listed(c, "--all")] == [("演练", "active"), ("上周", "expired")]

    result = cli("silences", "expire", "2", *c)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("silence #2 (topic=鲜丰奶茶) expired at ")
    assert listed(c) == []
    [row] = [r for r in listed(c, "--all") if r["id"] == 2]
    assert row["state"] == "expired" and datetime.fromisoformat(row["ends_at"]) <= datetime.now(timezone.utc)
    assert cli("silences", "list", *c).output.strip() == "no active silences"

    again = cli("silences", "expire", "2", *c)
    assert again.exit_code == 1 and again.output.startswith("error: silence #2 already expired at ")
    old = cli("silences", "expire", "1", *c)
    assert old.exit_code == 1 and old.output.startswith("error: silence #1 already expired at ")
    missing = cli("silences", "expire", "99", *c)
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no silence #99")


@pytest.mark.parametrize("args, message", [
    (("--for", "2h", "--reason", "x"),
     "error: a silence needs at least one of --topic, --rule, --severity (it would match nothing)"),
    (("--topic", " ", "--for", "2h", "--reason", "x"),
     "error: a silence needs at least one of --topic, --rule, --severity (it would match nothing)"),
    (("--topic", "鲜丰奶茶", "--until", "2020-01-01 00:00", "--reason", "x"),
     "error: the silence would end in the past (2019-12-31T16:00:00+00:00); nothing to silence"),
    (("--topic", "鲜丰奶茶", "--reason", "x"),
     'error: say how long, with exactly one of --for "2h" or --until "2026-03-15 18:00"'),
    (("--topic", "鲜丰奶茶", "--for", "2h", "--until", "2099-01-01 00:00", "--reason", "x"),
     'error: say how long, with exactly one of --for "2h" or --until "2026-03-15 18:00"'),
    (("--topic", "鲜丰奶茶", "--for", "soon", "--reason", "x"), "error: --for: expected a duration like \"2h\", got 'soon'"),
    (("--topic", "鲜丰奶茶", "--for", "0s", "--reason", "x"), "error: --for: expected a positive duration, got '0s'"),
    (("--topic", "鲜丰奶茶", "--until", "tomorrow", "--reason", "x"),
     "error: --until: expected a time like \"2026-03-15 18:00\" or \"18:00\", got 'tomorrow'"),
    (("--severity", "V", "--for", "2h", "--reason", "x"), "error: --severity: expected one of I, II, III, IV, got 'V'"),
    (("--topic", "鲜丰奶茶", "--for", "2h"), "error: a silence needs --reason (it shows on every page it holds back)"),
])
def test_bad_silences_are_refused_in_one_line(c, args, message):
    result = cli("silences", "add", *c, *args)
    assert (result.exit_code, result.output.strip()) == (1, message)
    assert listed(c, "--all") == []


def test_a_topic_not_in_the_config_is_warned_about_but_silenced(c):
    result = cli("silences", "add", *c, "--topic", "鲜丰奶荼", "--for", "1h", "--reason", "x")
    assert result.exit_code == 0
    assert "warning: topic '鲜丰奶荼' is not in the config (鲜丰奶茶)" in result.output
    assert [r["matcher"] for r in listed(c)] == [{"topic": "鲜丰奶荼"}]
