"""`monitor replay` through typer's runner on the project's own small fixtures (fixtures/replay/),
and the scoring behind it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.core.severity import Severity
from monitor.cli import app
from monitor.app.replay import pages_of, replay_counts, score_pages
from tests.factories import make_match

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
COUNTS, MENTIONS, CONFIG = FIX / "counts.csv", FIX / "mentions.jsonl", FIX / "config.yaml"
runner = CliRunner()
UTC = timezone.utc


def replay(*args: str):
    result = runner.invoke(app, ["replay", *map(str, args)], env={"MONITOR_CONFIG": None})
    pages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result, pages


def test_counts_with_default_rule_print_each_page_as_a_json_line_and_a_summary():
    result, pages = replay("--counts", COUNTS)

    assert result.exit_code == 0, result.output
    # counts.csv: 2 per bucket with a lone 14 at 07:30 (one noisy bucket: no page), then 25, 30 at 09:10, 09:15
    assert [(p["at"], p["kind"], p["severity"]) for p in pages] == [
        ("2024-06-01T09:20:00+00:00", "firing", "III"),  # confirmed when the second hot bucket ends
        ("2024-06-01T09:50:00+00:00", "reminder", "III"),  # unacknowledged; the 1h and 2h windows still hold it
        ("2024-06-01T10:40:00+00:00", "recovered", "III"),  # 30 minutes after no scale fires
    ]
    firing = pages[0]
    assert (firing["rule"], firing["rule_type"], firing["topic"]) == ("负面激增", "negative_spike", "全部")
    assert firing["numbers"]["current_negative"] == 30 and firing["numbers"]["hot_buckets"] == 2
    assert firing["reason"].startswith("「全部」负面声量激增：近5m负面 30 条")
    assert result.stderr.strip() == "replay: 1 pages, 0 escalations, 1 recoveries, 1 reminders over 11.9 hours"


@pytest.mark.parametrize("labels", ["labels.json", "labels.csv"])
def test_labels_give_precision_recall_and_delay(labels):
    result, pages = replay("--counts", COUNTS, "--labels", FIX / labels)

    assert result.exit_code == 0, result.output
    assert len(pages) == 3
    assert result.stderr.splitlines()[1:] == [
        "labels: 1/2 windows hit, 0 false of 1 counted pages (1h refractory); precision 1.00, recall 0.50",
        "delay from window start: median 30 min, min 30, max 30",  # window 08:50, page 09:20
    ]


def test_mentions_through_the_rules_of_a_config_page_once_per_crisis():
    """Three rules see one crisis: one incident, one page, one escalation when 爆炸 makes it worse."""
    result, pages = replay(MENTIONS, "--config", CONFIG, "--tz", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    detections = [(p["kind"], p["severity"], p["at"]) for p in pages if p["kind"] in ("firing", "escalated")]
    assert detections == [
        ("firing", "IV", "2024-06-01T04:03:00+00:00"),  # 12 complaints from 12:02 Beijing time, within a minute
        ("escalated", "II", "2024-06-01T04:22:00+00:00"),  # 爆炸 is II in the config; the 大V post (III) only joins
    ]
    escalated = next(p for p in pages if p["kind"] == "escalated")
    assert escalated["reason"].startswith("「鲜丰奶茶」出现敏感词「爆炸、起火」")
    assert escalated["evidence"] == ["big1"] and escalated["topic"] == "鲜丰奶茶"
    assert len({p["incident_id"] for p in pages}) == 1
    assert [p["kind"] for p in pages if p["kind"] == "recovered"] == ["recovered"]  # when the last signal ends
    assert result.stderr.startswith("replay: 1 pages, 1 escalations, 1 recoveries")


def test_group_by_topic_rule_keeps_one_incident_per_rule(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.read_text(encoding="utf-8") + "incidents:\n  group_by: topic_rule\n", encoding="utf-8")
    result, pages = replay(MENTIONS, "--config", config, "--tz", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    firing = [(p["rule"], p["severity"], p["at"]) for p in pages if p["kind"] == "firing"]
    assert firing == [
        ("负面激增", "IV", "2024-06-01T04:03:00+00:00"),
        ("危机词", "II", "2024-06-01T04:22:00+00:00"),
        ("大V负面", "III", "2024-06-01T04:22:00+00:00"),  # 250万 followers = 5x min_followers
    ]
    keyword = next(p for p in pages if p["rule"] == "危机词")
    assert keyword["evidence"] == ["big1"] and keyword["topic"] == "鲜丰奶茶"
    assert {p["rule"] for p in pages if p["kind"] == "recovered"} == {"大V负面", "危机词", "负面激增"}
    assert result.stderr.startswith("replay: 3 pages, 0 escalations, 3 recoveries")


def test_mentions_without_config_use_negative_spike_defaults_which_are_still_warming_up():
    result, pages = replay(MENTIONS)
    assert result.exit_code == 0, result.output
    assert pages == []  # three hours of history < the default six-hour warm-up
    assert result.stderr.startswith("replay: 0 pages")


def test_counts_through_a_named_rule_of_a_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rules:\n  - {name: 松, type: negative_spike, scales: [5m], confirm: 4, z_immediate: null}\n"
                   "  - {name: 紧, type: negative_spike, confirm: 1}\n", encoding="utf-8")
    _, loose = replay("--counts", COUNTS, "--config", cfg)
    _, strict = replay("--counts", COUNTS, "--config", cfg, "--rule", "紧")
    assert loose == []  # the first negative_spike rule wants four hot 5m buckets in a row; the burst has three
    # confirm 1: the lone 14 pages too; its incident, resolved at 08:05, reopens for the burst and, unacknowledged
    # for 30 minutes, reminds — the daemon's pages
    assert [(p["rule"], p["at"], p["kind"], p["incident_id"]) for p in strict if p["kind"] != "recovered"] == [
        ("紧", "2024-06-01T07:35:00+00:00", "firing", 1), ("紧", "2024-06-01T09:15:00+00:00", "reopened", 1),
        ("紧", "2024-06-01T09:45:00+00:00", "reminder", 1)]
    assert strict[0]["reason"].endswith("（5m尺度异常）")


@pytest.mark.parametrize(("args", "message"), [
    ((), "give either a JSONL file of mentions or --counts FILE.csv"),
    ((MENTIONS, "--counts", COUNTS), "give either a JSONL file of mentions or --counts FILE.csv"),
    (("--counts", COUNTS, "--rule", "x"), "--rule needs --config"),
    (("--counts", COUNTS, "--labels", FIX / "labels.json", "--series", "other.csv"),
     "no labels for other.csv; labelled series: counts.csv"),
    ((MENTIONS, "--step", "0s"), "--step: must be positive"),
    ((MENTIONS, "--tz", "Mars/Olympus"), "--tz: unknown time zone 'Mars/Olympus'"),
])
def test_usage_errors_are_one_line_and_exit_1(args, message):
    result, _ = replay(*args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_bad_input_lines_are_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-06-01 00:00:00,3\n2024-06-01 00:05:00,lots\n", encoding="utf-8")
    result, _ = replay("--counts", bad)
    assert result.exit_code == 1 and f"{bad}:3: value: expected a number, got 'lots'" in result.output
    unlabelled = tmp_path / "m.jsonl"
    unlabelled.write_text('{"text": "x", "published_at": "2024-06-01T00:00:00"}\n', encoding="utf-8")
    result, _ = replay(unlabelled)
    assert result.exit_code == 1 and f"{unlabelled}:1: needs a label" in result.output


def test_a_config_problem_exits_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rules:\n  - {name: x, type: negative_spike, bucket: 10m, window: 5m}\n", encoding="utf-8")
    result, _ = replay("--counts", COUNTS, "--config", cfg)
    assert result.exit_code == 2 and "rules[0].window: must be at least the bucket (10m), got 5m" in result.output


# -- library ---------------------------------------------------------------------------------
T = datetime(2024, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_score_pages_counts_one_burst_once_and_measures_delay():
    windows = [(T + 2 * H, T + 4 * H), (T + 10 * H, T + 11 * H)]
    pages = [T, T + 30 * timedelta(minutes=1), T + 2.5 * H, T + 3 * H, T + 3.6 * H, T + 20 * H]
    score = score_pages(pages, windows)
    # T+30m falls in T's refractory hour; T+3h in T+2.5h's; T+3.6h is counted and inside window 0
    assert (score.windows, score.hit, score.pages, score.false_pages) == (2, 1, 4, 2)
    assert score.delays == (timedelta(minutes=30),)
    assert (score.precision, score.recall) == (0.5, 0.5)
    empty = score_pages([], windows)
    assert (empty.precision, empty.recall) == (None, 0.0)


def test_pages_of_sends_nothing_for_evidence_at_the_same_severity():
    at = datetime(2024, 6, 1, tzinfo=UTC)
    matches = [make_match(at=at), make_match(at=at + H), make_match(at=at + 2 * H, severity=Severity.II),
               make_match(at=at + 3 * H, severity=Severity.III), make_match(kind="recovered", at=at + 4 * H),
               make_match(kind="recovered", at=at + 5 * H), make_match(at=at + 6 * H)]
    assert [(p.kind, p.at - at) for p in pages_of(matches)] == [
        ("firing", timedelta(0)), ("escalated", 2 * H), ("recovered", 4 * H), ("firing", 6 * H)]


def test_replay_counts_of_nothing_is_nothing():
    assert replay_counts([]) == []


def test_every_rule_type_on_one_topic_gives_one_incident_for_the_crisis(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.read_text(encoding="utf-8").replace("rules:\n", """rules:
  - name: 负面占比
    type: negative_share
    min_total: 10
  - name: 负面频繁
    type: frequency
    count: 8
    labels: [negative]
""", 1), encoding="utf-8")
    result, pages = replay(MENTIONS, "--config", config, "--tz", "Asia/Shanghai")

    assert result.exit_code == 0, result.output
    assert len({p["incident_id"] for p in pages}) == 1
    assert [p["kind"] for p in pages].count("firing") == 1
    assert [p["kind"] for p in pages].count("recovered") == 1
