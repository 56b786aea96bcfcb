"""Daemon hardening: one daemon per database (lease + heartbeat), the watchdog, SIGHUP reload,
SIGTERM — through the real `monitor run` process where signals are involved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.app.lease import Lease, current
from monitor.core.errors import LeaseHeld
from monitor.storage.models import IncidentRow
from monitor.app.watchdog import Watchdog
from tests.factories import T0

SEC = timedelta(seconds=1)


def test_lease_refuses_a_second_daemon_and_expires_after_a_crash(db):
    first, second = Lease(db, info={"version": "x"}), Lease(db)
    first.acquire(T0)
    with pytest.raises(LeaseHeld, match=r"another daemon already polls this database: .* pid \d+, heartbeat 10s ago"):
        second.acquire(T0 + 10 * SEC)
    assert first.renew(T0 + 30 * SEC)
    with pytest.raises(LeaseHeld):
        second.acquire(T0 + 80 * SEC)  # heartbeat 50 s old: still alive (ttl 60 s)
    second.acquire(T0 + 91 * SEC)  # 61 s without heartbeat: the first one died; take over
    assert current(db).holder == second.holder
    assert not first.renew(T0 + 92 * SEC)  # the old one learns it lost the lease
    first.release()  # releasing a lease one no longer holds changes nothing
    assert current(db).holder == second.holder
    second.release()
    assert current(db) is None


def test_watchdog_pages_once_when_polling_stalls_and_recovers():
    dog = Watchdog(factor=3, min_overdue=60 * SEC)
    dog.expect({"weibo": 30 * SEC, "zhihu": 5 * 60 * SEC}, T0)
    assert dog.check(T0 + 90 * SEC) == []  # exactly at 3 × 30 s: not yet
    [fired] = dog.check(T0 + 91 * SEC)
    assert (fired.kind, fired.topic, fired.rule_type) == ("firing", "系统", "watchdog")
    assert "weibo" in fired.reason and "zhihu" not in fired.reason
    assert dog.check(T0 + 120 * SEC) == []  # one page per stall
    dog.polled("weibo", T0 + 121 * SEC)
    [back] = dog.check(T0 + 122 * SEC)
    assert back.kind == "recovered"


def write_config(path, data_dir, jsonl, *, extra: str = "") -> None:
    path.write_text(f"""
data_dir: {data_dir}
sources:
  - name: export
    type: jsonl
    path: {jsonl}
    interval: 1s
topics:
  - name: 鲜丰奶茶
    keywords: [鲜丰]
channels:
  - name: 终端
    type: console
{extra}""", encoding="utf-8")


def test_supervisor_watchdog_opens_an_incident_when_the_scheduler_stalls(db, tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("", encoding="utf-8")
    cfg_path = tmp_path / "monitor.yaml"
    write_config(cfg_path, tmp_path, jsonl)
    daemon = Daemon(parse_config(cfg_path.read_text()), db=db)
    daemon.start()
    try:
        time.sleep(1.5)
        daemon.scheduler.pause()
        later = daemon.clock() + timedelta(minutes=5)
        daemon.supervise(later)
        with db.session() as s:
            [incident] = s.scalars(select(IncidentRow)).all()
            assert (incident.topic, incident.rule, incident.severity, incident.status) == ("系统", "调度器看门狗", "II", "open")
        daemon.scheduler.resume()
        time.sleep(1.5)
        daemon.supervise(daemon.clock())
        with db.session() as s:
            assert s.get(IncidentRow, incident.id).status == "resolved"
        assert current(db).info["sources"]["export"]  # heartbeat row carries last poll per source
    finally:
        assert daemon.stop(grace=5 * SEC)
    assert current(db) is None  # released on a clean stop


def wait_for_text(proc_log, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = proc_log.read_text(encoding="utf-8", errors="replace")
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in log within {timeout}s:\n{proc_log.read_text()}")


def test_run_process_reload_lock_and_sigterm(tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"id": "1", "text": "鲜丰奶茶好喝", "published_at": "2026-03-15T12:00:00+08:00"},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = tmp_path / "monitor.yaml"
    write_config(cfg, tmp_path / "data", jsonl)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(cfg)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_text(log, "1 fetched, 1 new", 120)  # a fresh data dir builds the default model first (10–50 s on a busy machine)

        second = subprocess.run([sys.executable, "-m", "monitor", "run", "--config", str(cfg)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "another daemon already polls this database" in second.stderr

        good = cfg.read_text(encoding="utf-8")
        cfg.write_text(good.replace("interval: 1s", "interval: ten"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        text = wait_for_text(log, "keeping the old config", 10)
        assert 'sources[0].interval: expected a duration like "10m", got "ten"' in text

        cfg.write_text(good.replace("keywords: [鲜丰]", "keywords: [鲜丰, 奶茶]"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for_text(log, "config reloaded", 10)

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "SIGTERM received" in log.read_text(encoding="utf-8")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_status_command_reports_the_daemon_queue_and_sources(db, tmp_path):
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.storage import repo

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"storage:\n  url: {json.dumps(db.url)}\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--config", str(cfg), "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["daemon"] is None  # nothing running

    from datetime import datetime, timezone
    now = datetime.now(timezone.utc)
    lease = Lease(db, info={"version": "9.9"})
    lease.acquire(now)
    with db.session() as s:
        repo.record_poll_failure(s, "weibo", "rss", "HTTP 503 Service Unavailable", now)
    result = runner.invoke(app, ["status", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["daemon"]["alive"] and doc["daemon"]["version"] == "9.9" and doc["daemon"]["pid"] == os.getpid()
    assert doc["incidents"] == {"open": 0, "acknowledged": 0, "resolved": 0}
    assert doc["queue"] == {"deliveries_pending": 0, "deliveries_failed": 0}
    assert [(s["name"], s["consecutive_failures"], s["health"]) for s in doc["sources"]] == [("weibo", 1, "erroring")]
    text = runner.invoke(app, ["status", "--config", str(cfg)])
    assert "daemon: running" in text.output and "HTTP 503" in text.output


# --- crash recovery, cancellable jobs, reload (issue 10) ------------------------------------------

def _write_lease(db, *, host: str, pid: int, info: dict) -> None:
    from monitor.storage import lease as lease_store
    from monitor.storage.lease import LeaseInfo

    with db.session() as s:
        lease_store.write(s, LeaseInfo("dead-holder", host, pid, T0, T0, info))


def test_lease_of_a_process_gone_from_this_host_is_taken_over_at_once(db):
    import socket

    from monitor.app.lease import process_start

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    _write_lease(db, host=socket.gethostname(), pid=gone.pid, info={})
    Lease(db).acquire(T0 + SEC)  # heartbeat 1 s old, but the holder is gone

    # A reused PID: a live process with that pid, started at another time than the holder.
    _write_lease(db, host=socket.gethostname(), pid=os.getpid(), info={"pid_start": process_start(os.getpid()) - 1})
    Lease(db).acquire(T0 + SEC)

    # Another host, or the live holder itself: only the heartbeat decides.
    for host, pid, start in (("elsewhere", gone.pid, None), (socket.gethostname(), os.getpid(), process_start(os.getpid()))):
        _write_lease(db, host=host, pid=pid, info={"pid_start": start})
        with pytest.raises(LeaseHeld):
            Lease(db).acquire(T0 + SEC)


def test_a_retired_pipeline_is_closed_by_its_last_job(db):
    from tests.source_helpers import make_pipeline

    pipeline = make_pipeline(db, [{"name": "f", "type": "jsonl", "path": "/nonexistent.jsonl"}])
    closed = []
    pipeline.close = lambda: closed.append(True)
    with pipeline.jobs.running():
        with pipeline.jobs.running():  # nested: a poll calling ingest
            assert pipeline.retire() is False
        assert closed == []
    assert closed == [True]
    assert make_pipeline(db, []).retire() is True  # nothing running: closed at once


def test_reload_cancels_a_hung_poll_and_closes_the_old_pipeline_after_it(db, tmp_path):
    from tests.faults.hostile import HostileServer, hang

    with HostileServer({"/hang": hang()}) as server:
        cfg_path = tmp_path / "monitor.yaml"
        cfg_path.write_text(f"""
data_dir: {tmp_path}
sources:
  - {{name: hung, type: rss, url: "{server.url}/hang", interval: 1h, timeout: 60s}}
scheduler: {{shutdown_grace: 10s}}
""", encoding="utf-8")
        daemon = Daemon(parse_config(cfg_path.read_text()), db=db, config_path=cfg_path,
                        pipeline=None)
        daemon.start()
        try:
            deadline = time.monotonic() + 10
            while server.hits["/hang"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            old = daemon.pipeline
            assert old.jobs.running_count == 1
            closed = []
            old_close = old.close
            old.close = lambda: (closed.append(True), old_close())
            started = time.monotonic()
            assert daemon.reload()
            took = time.monotonic() - started
            assert took < 2, took  # not the 10 s grace: the hung poll was cancelled
            assert old.jobs.wait_idle(2) and closed == [True]
            assert daemon.pipeline is not old
            with db.session() as s:
                from monitor.storage.models import SourceStateRow
                state = s.get(SourceStateRow, "hung")
                assert state is None or state.consecutive_failures == 0  # a cancel is not a failure
        finally:
            assert daemon.stop(grace=5 * SEC)


def test_a_poll_cancelled_between_stages_stores_nothing_and_is_no_failure(db, tmp_path):
    from monitor.storage.models import MentionRow, SourceStateRow
    from tests.source_helpers import KeywordScorer, make_pipeline

    export = tmp_path / "in.jsonl"
    export.write_text("".join(json.dumps({"id": str(i), "text": f"星河手机第{i}条"}, ensure_ascii=False) + "\n"
                              for i in range(5)), encoding="utf-8")
    pipeline = make_pipeline(db, [{"name": "f", "type": "jsonl", "path": str(export)}])

    class CancellingScorer(KeywordScorer):  # the shutdown arrives while the poll is being scored
        def score(self, text):
            pipeline.cancel()
            return super().score(text)

    pipeline.scorer = CancellingScorer()
    report = pipeline.poll("f")
    assert report.cancelled and report.stored == 0 and report.error is None
    with db.session() as s:
        assert s.query(MentionRow).count() == 0
        state = s.get(SourceStateRow, "f")
        assert state is None or (state.cursor is None and state.consecutive_failures == 0)
