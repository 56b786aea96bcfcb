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
        acked_in_console = _ack_in_console(output.decode())
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
    assert incident["topic"] == "鲜丰奶茶"
    # Without a terminal: the printed console URL and login, the page's link, one POST from the logged-in session.
    assert acked_in_console == 303
    assert incident["status"] == "acknowledged" and incident["acked_by"] == "demo"

    # A second demo run refuses nothing and starts fresh; a foreign database is never touched.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "monitor.db").write_bytes(b"")
    refused = subprocess.run(cmd, env={**env, "MONITOR_DATA_DIR": str(foreign)}, capture_output=True, timeout=60)
    assert refused.returncode == 1
    assert b"was not created by the demo" in refused.stderr


def _ack_in_console(printed: str) -> int:
    """Log in with the login the demo printed and acknowledge the incident its page links to."""
    import re

    import httpx

    from monitor.app.demo import DEMO_PASSWORD, DEMO_USER

    base = re.search(r"console: (http://127\.0\.0\.1:\d+)", printed).group(1)
    link = re.search(r"查看详情：(http://\S+/incidents/\d+)", printed).group(1)
    assert link.startswith(base)
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        login = client.post("/login", data={"name": DEMO_USER, "password": DEMO_PASSWORD, "next": link[len(base):],
                                            "csrf_token": csrf})
        assert login.status_code == 303 and login.headers["location"].endswith(link[len(base):])
        page = client.get(link[len(base):] + "?ack=1")
        assert page.status_code == 200 and "确认处理" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return client.post(link[len(base):] + "/ack", data={"csrf_token": token}).status_code
