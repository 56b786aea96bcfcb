"""Starting daemons on a shared database: migrations run once however many start together (a rolling
upgrade), the job queue's tables are installed once, and a single daemon never runs beside a cluster."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.core.errors import LeaseHeld
from monitor.storage import Database, cluster, jobqueue
from monitor.storage.schema import head_revision

PG = os.environ.get("MONITOR_TEST_DATABASE_URL")


@pytest.fixture
def empty_pg_url():
    if not PG:
        pytest.skip("PostgreSQL tests need MONITOR_TEST_DATABASE_URL")
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(PG).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_daemons_starting_together_migrate_once_and_install_the_job_queue_once(empty_pg_url):
    from monitor.app.cluster.queue import schema_sql

    dbs = [Database(empty_pg_url) for _ in range(4)]
    errors: list[BaseException] = []
    installed: list[bool] = []
    start = threading.Barrier(len(dbs))

    def start_one(db: Database) -> None:
        try:
            start.wait()
            db.migrate()
            installed.append(jobqueue.ensure_schema(db, schema_sql()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start_one, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert sorted(installed) == [False, False, False, True]
        assert dbs[0].schema_revision() == head_revision()
        assert {"procrastinate_jobs", "cluster_nodes", "mentions"} <= set(inspect(dbs[0].engine).get_table_names())
    finally:
        for db in dbs:
            db.dispose()


def test_a_single_daemon_refuses_to_poll_beside_live_cluster_nodes(db, tmp_path):
    now = datetime.now(timezone.utc)
    with db.session() as s:
        cluster.register(s, cluster.Node("n1", "杭州-1", "host-a", 4242, "0.1", now, now, "running", {}))
    daemon = Daemon(parse_config(f"data_dir: {tmp_path}\n", env={}), db=db)
    with pytest.raises(LeaseHeld, match="杭州-1"):
        daemon.start()
    assert daemon.scheduler is None  # refused before polling anything


def cluster_daemon(db, tmp_path, clock=None):
    from monitor.app.cluster.daemon import ClusterDaemon

    cfg = parse_config(f"data_dir: {tmp_path}\nstorage: {{url: 'postgresql+psycopg://x@127.0.0.1/x'}}\n"
                       "cluster: {enabled: true, node_name: 杭州-1}\n", env={})
    return ClusterDaemon(cfg, db=db, **({"clock": clock} if clock else {}))


def test_a_node_refuses_a_name_a_live_node_uses_but_replaces_its_own_killed_run(db, tmp_path):
    import socket

    if db.is_sqlite:
        pytest.skip("a cluster runs on PostgreSQL")
    now = datetime.now(timezone.utc)
    with db.session() as s:
        cluster.register(s, cluster.Node("elsewhere", "杭州-1", "host-b", 4242, "0.1", now, now, "running", {}))
    with pytest.raises(LeaseHeld, match="杭州-1.*host-b pid 4242"):
        cluster_daemon(db, tmp_path)._check_joinable(now)
    with db.session() as s:
        cluster.remove(s, "elsewhere")
        # this host's previous run under the name, killed a moment ago (no such process now)
        cluster.register(s, cluster.Node("killed", "杭州-1", socket.gethostname(), 2 ** 22 + 7, "0.1", now, now,
                                         "running", {}))
        cluster.claim_poll(s, "weibo", "rss", now, now + timedelta(minutes=1), "杭州-1")
    cluster_daemon(db, tmp_path)._check_joinable(now)
    with db.session() as s:
        assert cluster.nodes(s) == []
        assert cluster.due_sources(s, ["weibo"], now) == ["weibo"]  # its unfinished poll came back


def test_a_node_with_a_clock_far_off_the_databases_refuses_to_join(db, tmp_path):
    from monitor.core.errors import StorageError

    if db.is_sqlite:
        pytest.skip("a cluster runs on PostgreSQL")
    late = datetime.now(timezone.utc) + timedelta(seconds=30)
    with pytest.raises(StorageError, match="clock is 3[0-9].[0-9]s off the database's"):
        cluster_daemon(db, tmp_path)._check_joinable(late)
