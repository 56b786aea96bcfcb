"""Pages through crashes and a channel that is down, with a real daemon and real receivers.

- kill -9 right after a page was sent and recorded: the restart pages nothing again;
- kill -9 while the receiver holds the request (the page sent, its outcome unknown): the restart
  sends it again once the send's claim expires — delivery is at least once, and this is its one
  duplicate case;
- the channel refuses connections for a while: every attempt is recorded, the fallback channel gets
  the page after ``fallback_after`` failures, and the channel gets it once when it is back."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from sqlalchemy import select

from monitor.storage.models import NotificationRow
from tests.faults.hostile import HostileServer, respond
from tests.faults.proc import DaemonProcess, config_text

COMPLAINT = {"id": "c1", "text": "鲜丰奶茶塌房了，喝出异物，大家别买"}  # undated: the fetch time, so the rule sees it now


class Receiver(HostileServer):
    """A webhook receiver recording every page it accepted; ``hold`` seconds before answering the first."""

    def __init__(self, port: int = 0, hold: float = 0.0):
        self.pages: list[dict] = []
        self._lock = threading.Lock()

        def accept(h, stop) -> None:
            with self._lock:
                self.pages.append(json.loads(h.body))
                first = len(self.pages) == 1
            if first and hold:
                stop.wait(hold)
            respond(200, b'{"ok": true}', {"Content-Type": "application/json"})(h, stop)

        super().__init__({"/hook": accept}, port=port)

    def firing(self) -> list[dict]:
        return [p for p in self.pages if p["kind"] == "firing"]


def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def write_config(tmp_path, db, model_file, channels: str, delivery: str = "{interval: 1s}") -> object:
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps(COMPLAINT, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(config_text(data_dir=tmp_path, db_url=db.url, model=model_file, body=f"""
scheduler: {{rules_interval: 1s}}
delivery: {delivery}
sources:
  - {{name: export, type: jsonl, path: {export}, interval: 1s}}
topics:
  - {{name: 鲜丰奶茶, keywords: [鲜丰]}}
rules:
  - {{name: 塌房, type: keyword, terms: {{塌房: II}}}}
channels:
{channels}"""), encoding="utf-8")
    return cfg


def notifications(db, channel: str) -> list[tuple[str, int]]:
    with db.session() as s:
        return list(s.execute(select(NotificationRow.status, NotificationRow.attempt)
                              .where(NotificationRow.channel == channel).order_by(NotificationRow.id)).all())


@pytest.mark.timeout(120)
def test_a_restart_right_after_a_page_does_not_page_again(db, tmp_path, model_file):
    with Receiver() as hook:
        cfg = write_config(tmp_path, db, model_file, f"  - {{name: ops, type: webhook, url: {hook.url}/hook}}")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
        try:
            daemon.start()
            wait_until(lambda: notifications(db, "ops") == [("sent", 1)], 30, "the page")
            daemon.kill9()  # right after it was sent and recorded
            daemon.start()
            daemon.wait_for("[stage=start]", 20)
            time.sleep(5)  # polls, rule ticks and delivery runs of the new process
            code, _ = daemon.terminate()
        finally:
            daemon.ensure_stopped()
    print(f"\n[faults] restart right after a page: pages received {len(hook.firing())}, re-paged {len(hook.firing()) - 1}")
    assert len(hook.firing()) == 1 and notifications(db, "ops") == [("sent", 1)]
    assert code == 0


@pytest.mark.timeout(120)
def test_a_crash_in_the_middle_of_a_send_repeats_that_page_once_after_the_claim_expires(db, tmp_path, model_file):
    with Receiver(hold=30) as hook:
        cfg = write_config(tmp_path, db, model_file, f"  - {{name: ops, type: webhook, url: {hook.url}/hook}}",
                           delivery="{interval: 1s, lease: 3s}")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
        try:
            daemon.start()
            wait_until(lambda: len(hook.pages) == 1, 30, "the page reaching the receiver")
            daemon.kill9()  # the receiver has it; the daemon never learnt the outcome
            daemon.start()
            wait_until(lambda: len(hook.pages) == 2, 20, "the page sent again")
            time.sleep(3)
            code, _ = daemon.terminate()
        finally:
            daemon.ensure_stopped()
    pages = hook.firing()
    print(f"\n[faults] crash mid-send: pages received {len(pages)} (the one duplicate case: re-paged 1), lost 0")
    assert len(pages) == 2 and pages[0]["incident_id"] == pages[1]["incident_id"]
    assert notifications(db, "ops")[-1] == ("sent", 1)
    assert code == 0


@pytest.mark.timeout(120)
def test_a_channel_down_for_a_while_gets_the_page_once_and_the_fallback_pages_meanwhile(db, tmp_path, model_file):
    with socket.socket() as probe:  # a port nothing listens on yet: the channel is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Receiver() as backup:
        cfg = write_config(tmp_path, db, model_file, f"""\
  - {{name: ops, type: webhook, url: "http://127.0.0.1:{port}/hook", fallback: backup, fallback_after: 2,
      retry: {{attempts: 10, backoff: 1s, factor: 1}}}}
  - {{name: backup, type: webhook, url: {backup.url}/hook, min_severity: I}}""")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
        try:
            daemon.start()
            wait_until(lambda: len(notifications(db, "ops")) >= 3, 30, "three failed attempts")
            with Receiver(port=port) as ops:  # back up
                wait_until(lambda: ("sent", len(notifications(db, "ops"))) in notifications(db, "ops"), 20,
                           "the page on the recovered channel")
                time.sleep(3)
                code, _ = daemon.terminate()
        finally:
            daemon.ensure_stopped()
    attempts = notifications(db, "ops")
    print(f"\n[faults] channel down: attempts {attempts}; received by the channel {len(ops.firing())}, "
          f"by the fallback {len(backup.firing())}")
    assert [n for _, n in attempts] == list(range(1, len(attempts) + 1))  # every attempt recorded, numbered
    assert {s for s, _ in attempts[:-1]} == {"failed"} and attempts[-1][0] == "sent"
    assert len(ops.firing()) == 1  # arrives once when the channel is back
    assert len(backup.firing()) == 1 and notifications(db, "backup") == [("sent", 1)]  # fallback used, once
    assert code == 0
