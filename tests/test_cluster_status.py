"""The cluster as operators see it (issue 14): ``status.cluster_view``, ``monitor status`` and the console's
/cluster page. Cluster rows are written with the cluster store's own functions (no daemons run); the
job queue's tables are procrastinate's real schema, installed as a node installs it. The single-daemon
path ("no cluster") runs on SQLite and PostgreSQL alike and must look exactly as before.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from monitor.app.config import parse_config
from monitor.app.service import Context, status
from monitor.cli import app
from monitor.storage import cluster, jobqueue
from monitor.storage.lease import LeaseInfo
from tests.conftest import PG_ENV, _postgres_db
from tests.web_helpers import Console

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
SEC = timedelta(seconds=1)
SOURCES = ("weibo", "douyin", "xhs", "zhihu")
HOSTILE = '<script>alert("节点")</script>'
runner = CliRunner()


@pytest.fixture
def pg(tmp_path):
    """A migrated PostgreSQL database of its own (the cluster needs PostgreSQL); skipped without one."""
    base_url = os.environ.get(PG_ENV)
    if not base_url:
        pytest.skip(f"cluster status tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    yield from _postgres_db(base_url)


def config_text(db, *, enabled: bool = False, extra: str = "") -> str:
    sources = "".join(f"  - name: {n}\n    type: rss\n    url: http://127.0.0.1:9/{n}\n" for n in SOURCES)
    cluster_cfg = "cluster:\n  enabled: true\n  dead_after: 20s\n" if enabled else ""
    return f"storage:\n  url: {json.dumps(db.url)}\n{cluster_cfg}sources:\n{sources}{extra}"


def ctx_for(db, tmp_path, **kwargs) -> Context:
    return Context(parse_config(f"data_dir: {json.dumps(str(tmp_path))}\n" + config_text(db, **kwargs)), db)


def node(name: str, heartbeat_at: datetime, *, polls: int = 0, state: str = "running", leader: bool = False,
         started_at: datetime | None = None) -> cluster.Node:
    return cluster.Node(f"id-{name}", name, f"host-{name}", 4000 + len(name), "1.4.0", started_at or T0 - 3600 * SEC,
                        heartbeat_at, state, {"polls": polls, "leader": leader, "running": 1, "sources": {}})


def write_cluster(db, now: datetime) -> None:
    """Three nodes (node-c silent for a minute), node-a leading the rules, the sources' schedule:
    weibo overdue 45 s (taken by node-c, which died), douyin 1 s past due (within a dispatch period),
    xhs due in the future, zhihu overdue 5 min."""
    with db.session() as s:
        cluster.register(s, node("node-a", now - 1 * SEC, polls=120, leader=True, started_at=now - 7200 * SEC))
        cluster.register(s, node("node-b", now - 3 * SEC, polls=80, state="stopping", started_at=now - 3600 * SEC))
        cluster.register(s, node("node-c", now - 60 * SEC, polls=7, started_at=now - 1800 * SEC))
        assert cluster.acquire(s, "rules", "id-node-a", "node-a", now - 5 * SEC, 10 * SEC)
    plan = {"weibo": (now - 105 * SEC, now - 45 * SEC, "node-c"), "douyin": (now - 61 * SEC, now - 1 * SEC, "node-a"),
            "xhs": (now - 30 * SEC, now + 30 * SEC, "node-b"), "zhihu": (now - 360 * SEC, now - 300 * SEC, "node-a")}
    for name, (claimed_at, next_at, by) in plan.items():
        with db.session() as s:
            assert cluster.claim_poll(s, name, "rss", claimed_at, next_at, by)


def install_queue(db, jobs: dict[str, int]) -> None:
    """procrastinate's schema as a node installs it, and ``jobs`` rows per status."""
    from monitor.app.cluster.queue import schema_sql

    assert jobqueue.ensure_schema(db, schema_sql())
    with db.engine.begin() as conn:
        for state, n in jobs.items():
            for _ in range(n):
                conn.execute(text("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) VALUES "
                                  "('default', 'poll', '{}', CAST(:s AS procrastinate_job_status))"), {"s": state})


# -- the service -------------------------------------------------------------------------------------
def test_no_cluster_leaves_the_single_daemon_status_as_it_was(db, tmp_path):
    ctx = ctx_for(db, tmp_path)
    assert status.cluster_view(ctx, T0) is None
    st = status.status(ctx, T0)
    assert st == status.Status(None, {"open": 0, "acknowledged": 0, "resolved": 0}, 0, 0, []) and not st.alive


def test_the_cluster_view_on_postgresql(pg, tmp_path):
    write_cluster(pg, T0)
    install_queue(pg, {"todo": 3, "doing": 2, "failed": 1, "succeeded": 4})
    view = status.cluster_view(ctx_for(pg, tmp_path, enabled=True), T0)
    assert (view.enabled, view.dead_after_s, view.leader) == (True, 20.0, "node-a")
    assert [(n.name, n.alive, n.heartbeat_age_s, n.polls, n.leads_rules, n.state, n.sources) for n in view.nodes] == [
        ("node-a", True, 1.0, 120, True, "running", 2),
        ("node-b", True, 3.0, 80, False, "stopping", 1),
        ("node-c", False, 60.0, 7, False, "running", 1),  # older than dead_after (20 s in this config)
    ]
    assert (view.nodes[0].host, view.nodes[0].version, view.nodes[0].running) == ("host-node-a", "1.4.0", 1)
    assert [(v.name, v.polled_by, v.lag_s, v.overdue) for v in view.sources] == [
        ("douyin", "node-a", 1.0, False), ("weibo", "node-c", 45.0, True), ("xhs", "node-b", 0.0, False),
        ("zhihu", "node-a", 300.0, True)]
    assert view.sources[1].last_poll_at is None and view.sources[1].next_poll_at == T0 - 45 * SEC
    assert [v.name for v in view.overdue] == ["zhihu", "weibo"] and view.worst_lag_s == 300.0
    assert view.queue == {"todo": 3, "doing": 2, "failed": 1}
    assert [n.name for n in view.alive] == ["node-a", "node-b"]


def test_dead_after_defaults_to_ten_seconds_without_the_cluster_config(pg, tmp_path):
    write_cluster(pg, T0)
    view = status.cluster_view(ctx_for(pg, tmp_path), T0)  # rows exist: shown though the config has no cluster
    assert view.enabled is False and view.dead_after_s == 10.0
    assert [n.alive for n in view.nodes] == [True, True, False]
    later = status.cluster_view(ctx_for(pg, tmp_path), T0 + 8 * SEC)  # node-b's heartbeat is 11 s old now
    assert [n.alive for n in later.nodes] == [True, False, False]


def test_an_expired_rules_lease_means_nobody_leads(pg, tmp_path):
    write_cluster(pg, T0)
    view = status.cluster_view(ctx_for(pg, tmp_path, enabled=True), T0 + 5 * SEC)  # the lease ran to T0 + 5 s
    assert view.leader is None and not any(n.leads_rules for n in view.nodes)


def test_sources_no_longer_configured_are_not_overdue(pg, tmp_path):
    write_cluster(pg, T0)
    ctx = Context(parse_config(f"data_dir: {json.dumps(str(tmp_path))}\nstorage:\n  url: {json.dumps(pg.url)}\n"
                               "sources:\n  - name: weibo\n    type: rss\n    url: http://127.0.0.1:9/w\n"
                               "  - name: zhihu\n    type: rss\n    url: http://127.0.0.1:9/z\n"
                               "    enabled: false\n"), pg)
    assert [v.name for v in status.cluster_view(ctx, T0).sources] == ["weibo"]


def test_enabled_before_any_node_ran_has_no_queue_figures(pg, tmp_path):
    """No procrastinate table yet (only a node installs it): the view still reads, without queue figures."""
    view = status.cluster_view(ctx_for(pg, tmp_path, enabled=True), T0)
    assert (view.nodes, view.leader, view.sources, view.queue) == ([], None, [], None)
    st = status.status(ctx_for(pg, tmp_path, enabled=True), T0)
    assert st.cluster == view and not st.alive


def test_cluster_rows_on_sqlite_show_without_queue_figures(db, tmp_path):
    """The store runs on SQLite too; the job queue never does: no figures, no query for them."""
    if not db.is_sqlite:
        pytest.skip("the SQLite path")
    write_cluster(db, T0)
    view = status.cluster_view(ctx_for(db, tmp_path), T0)
    assert view.queue is None and view.leader == "node-a" and len(view.nodes) == 3


def test_a_live_node_makes_the_status_alive_without_a_daemon_lease(pg, tmp_path):
    write_cluster(pg, T0)
    assert status.status(ctx_for(pg, tmp_path, enabled=True), T0).alive
    assert not status.status(ctx_for(pg, tmp_path, enabled=True), T0 + 120 * SEC).alive  # every heartbeat too old


# -- monitor status ----------------------------------------------------------------------------------
def write_config(db, tmp_path, **kwargs):
    path = tmp_path / "monitor.yaml"
    path.write_text(config_text(db, **kwargs), encoding="utf-8")
    return str(path)


def test_status_command_shows_the_cluster(pg, tmp_path, monkeypatch):
    now = datetime.now(timezone.utc)
    monkeypatch.setattr("monitor.cli.status._now", lambda: now)  # the ages shown are exact
    write_cluster(pg, now)
    with pg.session() as s:  # the leader's lease renewed (write_cluster's ran out 5 s after `now`)
        assert cluster.renew(s, "rules", "id-node-a", now, 60 * SEC)
    install_queue(pg, {"todo": 3, "doing": 2, "failed": 1})
    cfg = write_config(pg, tmp_path, enabled=True)
    result = runner.invoke(app, ["status", "--config", cfg], catch_exceptions=False)
    assert result.exit_code == 0, result.output  # live nodes: alive, though no single-daemon lease exists
    out = result.output
    assert "cluster: 2 of 3 node(s) alive (dead after 20s); rules led by node-a" in out
    assert "daemon: not running" not in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in out.splitlines() if line.startswith("│ node-")}
    assert rows["node-a"] == ["node-a", "1.4.0", "running", "1s ago", "120", "2", "leader"]
    assert rows["node-b"][2:4] == ["stopping", "3s ago"] and rows["node-c"][2:4] == ["dead", "60s ago"]
    assert rows["node-c"][-1] == "" and "│ host-node-a:4006 " in out  # where a named node runs, under its name
    assert "sources: 2 of 4 overdue, worst zhihu 5m late (last polled by node-a at -)" in out
    assert "job queue: 3 todo, 2 doing, 1 failed" in out

    doc = json.loads(runner.invoke(app, ["status", "--config", cfg, "--json"]).output)
    c = doc["cluster"]
    assert (c["leader"], c["overdue"], c["queue"]) == ("node-a", 2, {"todo": 3, "doing": 2, "failed": 1})
    assert [(n["name"], n["alive"], n["leads_rules"], n["polls"]) for n in c["nodes"]] == [
        ("node-a", True, True, 120), ("node-b", True, False, 80), ("node-c", False, False, 7)]
    assert {v["name"]: v["polled_by"] for v in c["sources"]} == {"douyin": "node-a", "weibo": "node-c",
                                                                   "xhs": "node-b", "zhihu": "node-a"}


def test_status_command_names_a_cluster_with_no_node(pg, tmp_path):
    result = runner.invoke(app, ["status", "--config", write_config(pg, tmp_path, enabled=True)])
    assert result.exit_code == 1
    assert "cluster: no node has joined (dead after 20s); no node leads the rules" in result.output
    assert "job queue" not in result.output  # no procrastinate table yet


def test_status_command_without_a_cluster_is_unchanged(db, tmp_path):
    cfg = write_config(db, tmp_path)
    result = runner.invoke(app, ["status", "--config", cfg])
    assert result.exit_code == 1 and "daemon: not running" in result.output and "cluster" not in result.output
    assert json.loads(runner.invoke(app, ["status", "--config", cfg, "--json"]).output)["cluster"] is None


def test_status_command_prints_hostile_names_as_text(pg, tmp_path):
    now = datetime.now(timezone.utc)
    with pg.session() as s:
        cluster.register(s, node("[bold red]x[/]", now))
        assert cluster.acquire(s, "rules", "id-[bold red]x[/]", "[bold red]x[/]", now, 60 * SEC)
    result = runner.invoke(app, ["status", "--config", write_config(pg, tmp_path, enabled=True)])
    assert "rules led by [bold red]x[/]" in result.output  # not taken for rich markup


# -- the console ---------------------------------------------------------------------------------------
def test_the_cluster_page(pg, tmp_path, monkeypatch):
    now = datetime.now(timezone.utc)
    monkeypatch.setattr("monitor.web.pages.cluster.now", lambda: now)  # the ages shown are exact
    write_cluster(pg, now)
    with pg.session() as s:
        assert cluster.renew(s, "rules", "id-node-a", now, 60 * SEC)
        cluster.register(s, node(HOSTILE, now))
    with Console(pg, tmp_path, config=config_text(pg, enabled=True)) as console:
        client = console.login("viewer")
        page = client.get("/cluster")
    assert page.status_code == 200
    html = page.text
    for label in ("节点", "心跳", "负责规则", "轮询次数", "逾期数据源"):
        assert label in html
    assert 'data-test="nodes-alive">节点 3/4 存活' in html
    assert 'data-test="leader">负责规则：node-a' in html
    assert 'data-test="overdue-count">逾期数据源 2' in html
    assert html.index('data-name="zhihu"') < html.index('data-name="weibo"')  # the latest first
    assert "逾期 5分00秒" in html and "逾期 45秒" in html
    assert 'data-name="node-c" data-alive="false"' in html
    assert html.count('data-test="node-leader"') == 1
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;节点&#34;)&lt;/script&gt;" in html
    assert 'data-test="queue-todo"' not in html  # no job queue installed in this database


def test_the_cluster_page_without_a_cluster(db, tmp_path):
    with Console(db, tmp_path, config=config_text(db)) as console:
        page = console.login("viewer").get("/cluster")
    assert page.status_code == 200
    assert "未启用集群模式" in page.text and 'data-test="node-row"' not in page.text
    assert "数据库中没有守护进程的租约" in page.text


def test_the_cluster_page_shows_the_single_daemon(db, tmp_path):
    from monitor.storage import lease as lease_store

    now = datetime.now(timezone.utc)
    with db.session() as s:
        lease_store.write(s, LeaseInfo("lease-1", "host-<b>", 42, now, now, {"version": "9.9"}))
    with Console(db, tmp_path, config=config_text(db)) as console:
        html = console.login("viewer").get("/cluster").text
    assert 'data-test="daemon-state">运行中' in html and "host-&lt;b&gt;" in html and "9.9" in html
