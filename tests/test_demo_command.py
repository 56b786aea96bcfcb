"""`monitor run --demo` as a newcomer runs it: a page within 60 s, Ctrl-C stops it cleanly
within 5 s, and afterwards `monitor incidents list` shows the incident."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time


def test_demo_pages_within_a_minute_and_stops_cleanly(tmp_path):
    env = {**os.environ, "MONITOR_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "120"}
    env.pop("MONITOR_CONFIG", None)
    cmd = [sys.executable, "-m", "monitor", "run", "--demo"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = b""
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while "舆情告警" not in output.decode("utf-8", "replace"):
            assert time.monotonic() - started < 60, f"no page within 60 s:\n{output.decode()}"
            if sel.select(timeout=1):
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"demo exited early ({proc.wait()}): {proc.stderr.read().decode()}"
                output += chunk
        time_to_page = time.monotonic() - started
        proc.send_signal(signal.SIGINT)
        stop_started = time.monotonic()
        rest, stderr = proc.communicate(timeout=10)
        stop_time = time.monotonic() - stop_started
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (output + rest).decode()
    assert proc.returncode == 0, stderr.decode()
    assert stop_time < 5, f"took {stop_time:.1f}s to stop"
    assert "「鲜丰奶茶」负面激增" in text and "monitor incidents ack 1" in text
    assert "SIGINT received" in stderr.decode()
    print(f"demo: first page after {time_to_page:.1f}s, stopped in {stop_time:.1f}s")

    listed = subprocess.run([sys.executable, "-m", "monitor", "incidents", "list", "--json"], env=env,
                            capture_output=True, check=True)
    [incident] = [i for i in json.loads(listed.stdout) if i["rule"] == "负面激增"]
    assert incident["topic"] == "鲜丰奶茶" and incident["status"] == "open"

    # A second demo run refuses nothing and starts fresh; a foreign database is never touched.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "monitor.db").write_bytes(b"")
    refused = subprocess.run(cmd, env={**env, "MONITOR_DATA_DIR": str(foreign)}, capture_output=True, timeout=60)
    assert refused.returncode == 1
    assert b"was not created by the demo" in refused.stderr
