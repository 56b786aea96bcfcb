"""Configuration: validation errors name file and field; ${ENV} interpolation; frozen objects."""

from datetime import timedelta
from pathlib import Path

import re

import pytest
from pydantic import ValidationError

from monitor.app.config import database_url, load_config, parse_config
from monitor.core.configtypes import parse_duration
from monitor.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
data_dir: /var/lib/yuqing
sources:
  - name: weibo
    type: rss
    url: https://rsshub.example/weibo/keyword/鲜丰奶茶
    interval: 2m
  - name: export
    type: jsonl
    path: exports/weibo.jsonl
topics:
  - name: 鲜丰奶茶
    keywords: [鲜丰奶茶, 鲜丰]
rules:
  - name: 负面激增
    type: negative_spike
    window: 10m
    reference: 1h
channels:
  - name: ops
    type: webhook
    url: ${OPS_HOOK}
    secret: ${OPS_SECRET:-}
"""


def problems(text: str, env=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, label="config.yaml", env=env or {"OPS_HOOK": "http://127.0.0.1:9/hook"})
    return info.value.problems


def test_good_config_is_typed_and_frozen():
    cfg = parse_config(GOOD, env={"OPS_HOOK": "http://127.0.0.1:9/hook?access_token=abc"})
    assert cfg.sources[0].interval == timedelta(minutes=2)
    assert cfg.sources[1].type == "jsonl"
    assert cfg.rules[0].window == timedelta(minutes=10)
    assert cfg.channels[0].url.get_secret_value().endswith("access_token=abc")
    assert "abc" not in repr(cfg.channels[0])  # secrets stay out of reprs and logs
    assert cfg.channels[0].secret.get_secret_value() == ""  # ${VAR:-default}
    with pytest.raises(ValidationError):
        cfg.rules[0].window = timedelta(0)  # frozen
    assert database_url(cfg) == "sqlite:////var/lib/yuqing/monitor.db"


def test_duration_error_names_file_and_field():
    bad = GOOD.replace("window: 10m", "window: ten")
    assert problems(bad) == ['config.yaml: rules[0].window: expected a duration like "10m", got "ten"']


def test_unknown_type_unknown_field_and_missing_field():
    bad = GOOD.replace("type: rss", "type: rsss").replace("interval: 2m", "interval: 2m\n    colour: red")
    bad = bad.replace("    keywords: [鲜丰奶茶, 鲜丰]\n", "")
    found = problems(bad)
    assert any(p.startswith("config.yaml: sources[0]: unknown type 'rsss'") for p in found), found
    assert "config.yaml: topics[0]: give either keywords (a list) or expression (a string)" in found


def test_extra_field_reported_by_path():
    found = problems(GOOD.replace("interval: 2m", "interval: 2m\n    intervall: 3m"))
    assert found == ["config.yaml: sources[0].intervall: unknown field"]


def test_missing_environment_variable_is_named():
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD, label="config.yaml", env={})
    assert info.value.problems == ["config.yaml: channels[0].url: environment variable OPS_HOOK is not set"]


def test_cross_checks_unknown_topic_duplicate_names_and_window_order():
    bad = GOOD.replace("    reference: 1h", "    reference: 5m\n    topics: [不存在]")
    bad += "  - name: ops\n    type: console\n"
    found = problems(bad)
    assert "config.yaml: rules[0].topics[0]: unknown topic '不存在'; known: 鲜丰奶茶" in found
    assert "config.yaml: channels[1].name: duplicate name 'ops' (also channels[0])" in found
    assert "config.yaml: rules[0].reference: must be at least the window (10m), got 5m" in found


def test_invalid_yaml_and_wrong_top_level():
    assert problems("sources: [\n")[0].startswith("config.yaml: line ")
    assert problems("- 1\n- 2\n") == ["config.yaml: expected a mapping at the top level, got list"]


def test_load_config_resolves_relative_paths_and_reports_missing_file(tmp_path):
    path = tmp_path / "conf" / "monitor.yaml"
    path.parent.mkdir()
    path.write_text(GOOD.replace("data_dir: /var/lib/yuqing\n", ""), encoding="utf-8")
    cfg = load_config(path, env={"OPS_HOOK": "http://127.0.0.1:9/"})
    assert cfg.sources[1].path == str(path.parent / "exports/weibo.jsonl")
    assert cfg.data_dir == str(path.parent / "data")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), (45, 45)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["ten", "10 minutes", "", "-5", "5x", True])
def test_parse_duration_rejects(text):
    with pytest.raises(Exception, match="expected a duration"):
        parse_duration(text)


def test_bundled_example_and_demo_configs_are_valid():
    env = {"DEMO_FEED_URL": "http://127.0.0.1:1/feed", "DEMO_DATA_DIR": "/tmp/x",
           "DINGTALK_WEBHOOK": "https://oapi.example/robot/send?access_token=x", "OPS_WEBHOOK_URL": "http://127.0.0.1:2/",
           "OPS_WEBHOOK_SECRET": "s", "MONITOR_DATABASE_URL": "sqlite:////tmp/x.db"}
    for path in (ROOT / "fixtures/demo/config.yaml", ROOT / "fixtures/example-config.yaml"):
        cfg = load_config(path, env=env)
        assert cfg.sources and cfg.topics and cfg.rules and cfg.channels, path


PG = "storage: {url: 'postgresql+psycopg://monitor@db.internal/monitor'}\n"


def test_a_cluster_is_configured_on_postgresql_only_and_says_so():
    cfg = parse_config(PG + "cluster: {enabled: true, node_name: 杭州-1}\n", env={})
    assert cfg.cluster.enabled and cfg.cluster.node_name == "杭州-1" and cfg.cluster.dead_after.total_seconds() == 10
    assert not parse_config("", env={}).cluster.enabled  # the embedded default stays one process
    for text, said in [
        ("cluster: {enabled: true}\n", "several daemons share a PostgreSQL database"),
        (PG + "cluster: {enabled: true, dispatch_every: 7s}\n", "cluster.dispatch_every"),
        (PG + "cluster: {enabled: true, heartbeat: 5s, dead_after: 10s}\n", "at least three heartbeats"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(said)):
            parse_config(text, env={})
