"""SIGHUP and SIGTERM while a fetch hangs, on a real `monitor run`: the hung poll is cancelled (its
socket shut down), stores nothing, counts as no failure, and the process reloads or exits well
within the grace period instead of waiting for a read that would take a minute."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.hostile import HostileServer, hang, trickle
from tests.faults.proc import DaemonProcess, config_text, mention_counts, source_state

GRACE = 4.0  # scheduler.shutdown_grace, the default


def _wait_hits(server: HostileServer, path: str, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.hits[path] < n:
        assert time.monotonic() < deadline, f"{path} not requested {n} times within {timeout}s"
        time.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ["/trickle", "/hang"])
def test_reload_and_sigterm_during_a_hung_fetch_end_within_the_grace_period(db, tmp_path, model_file, path):
    routes = {"/trickle": trickle(b"<rss>" + b" " * 10_000, every=1.0), "/hang": hang()}
    with HostileServer(routes) as server:
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(config_text(data_dir=tmp_path, db_url=db.url, model=model_file, body=f"""
sources:   # a minute before the deadline or a read timeout would end the fetch
  - {{name: hung, type: rss, url: "{server.url}{path}", interval: 1h, timeout: 60s, deadline: 60s}}
"""), encoding="utf-8")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log").start()
        try:
            _wait_hits(server, path, 1)
            time.sleep(1.5)  # well inside the fetch
            started = time.monotonic()
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_for("config reloaded", 10)
            reload_took = time.monotonic() - started
            _wait_hits(server, path, 2)  # the new config polls at once, and hangs again
            time.sleep(1.5)
            code, took = daemon.terminate()
        finally:
            daemon.ensure_stopped()
    log = daemon.output()
    print(f"\n[faults] hung fetch ({path}): reload took {reload_took:.2f}s, SIGTERM exit {took:.2f}s "
          f"(grace {GRACE:g}s), stored {mention_counts(db)[0]}")
    assert reload_took < GRACE  # it did not wait for the grace period, let alone the fetch
    assert code == 0 and took < GRACE, (code, took)
    assert log.count("poll cancelled (shutdown or reload)") == 2
    assert mention_counts(db) == (0, 0)
    state = source_state(db, "hung")
    assert state is None or (state.consecutive_failures == 0 and state.last_error is None)  # a cancel is no failure
