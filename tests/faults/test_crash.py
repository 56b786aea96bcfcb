"""kill -9, five times, during a 5,000-item ingest by a real daemon (scoring in its worker pool).

Items and the source's cursor are stored in one transaction, so whatever instant the kill lands on,
the restart neither loses nor duplicates an item. A restart takes the dead daemon's lease at once
(same host, its PID gone) and polls again within seconds; the dead daemon's scoring workers and
resource tracker exit with it."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.faults.hostile import HostileServer, respond
from tests.faults.proc import DaemonProcess, config_text, mention_counts, source_state, stored_ids, wait_gone

TOTAL = 5000
KILLS = 5
RESUME_WITHIN = 10.0  # seconds from a restart after a crash to its first poll
TEXTS = ["鲜丰奶茶第{i}杯，芋泥波波好喝，店员也热情", "第{i}次在鲜丰奶茶排队，等了半小时，有点失望",
         "鲜丰奶茶{i}号门店卫生一般，奶茶偏甜", "朋友推荐的鲜丰奶茶，第{i}口就爱上了，回购"]


@pytest.mark.timeout(300)
def test_five_kill9_during_an_ingest_lose_and_duplicate_nothing(db, tmp_path, model_file):
    with HostileServer({"/ping": respond(200, b"<rss version='2.0'><channel><title>t</title></channel></rss>",
                                         {"Content-Type": "application/rss+xml"})}) as ping:
        _ingest_with_kills(db, tmp_path, model_file, ping)


def _ingest_with_kills(db, tmp_path, model_file, ping: HostileServer) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps({"id": f"m{i}", "text": TEXTS[i % len(TEXTS)].format(i=i),
                                          "published_at": "2026-03-15T12:00:00+08:00"}, ensure_ascii=False) + "\n"
                              for i in range(TOTAL)), encoding="utf-8")
    cfg = tmp_path / "monitor.yaml"
    # workers 2, batch_min 50: every poll is scored in the worker pool
    cfg.write_text(config_text(data_dir=tmp_path, db_url=db.url, model=model_file, sentiment="workers: 2, batch_min: 50",
                               body=f"""
sources:
  - {{name: export, type: file, path: {export}, max_records: 250, interval: 1s}}
  - {{name: ping, type: rss, url: "{ping.url}/ping", interval: 1s}}   # its requests show when polling resumes
topics:
  - {{name: 鲜丰奶茶, keywords: [鲜丰]}}
"""), encoding="utf-8")
    rng = random.Random(20260315)
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log")
    resumes, storing, orphans, workers_seen, killed_at = [], [], [], [], []
    try:
        for _ in range(KILLS):
            before, pings = mention_counts(db)[0], ping.hits["/ping"]
            daemon.start()
            deadline = daemon.started_at + 60
            while ping.hits["/ping"] == pings and time.monotonic() < deadline:
                time.sleep(0.02)
            resumes.append(time.monotonic() - daemon.started_at)
            while mention_counts(db)[0] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            storing.append(time.monotonic() - daemon.started_at)
            time.sleep(rng.uniform(0.0, 1.5))  # anywhere: mid-fetch, mid-scoring, mid-transaction
            killed_at.append(mention_counts(db)[0])
            kids = daemon.kill9()
            workers_seen.append(len(kids))
            orphans.append(wait_gone(kids, 5.0))
        daemon.start()
        deadline = time.monotonic() + 150
        while mention_counts(db)[0] < TOTAL and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # one more poll: nothing new, nothing twice
        code, took = daemon.terminate()
    finally:
        daemon.ensure_stopped()

    rows, distinct = mention_counts(db, "export")
    lost = TOTAL - len(set(stored_ids(db, "export")) & {f"m{i}" for i in range(TOTAL)})
    print(f"\n[faults] kill -9 ×{KILLS} at {killed_at} stored rows: rows {rows}, distinct {distinct}, lost {lost}, "
          f"duplicated {rows - distinct}; polling again after {[round(r, 1) for r in resumes]} s, "
          f"storing after {[round(r, 1) for r in storing]} s; "
          f"children per kill {workers_seen}, orphans left {sum(map(len, orphans))}; SIGTERM exit {took:.2f}s")
    assert all(0 < k < TOTAL for k in killed_at), killed_at  # every kill landed during the ingest
    assert (rows, distinct, lost) == (TOTAL, TOTAL, 0)
    assert source_state(db, "export").items_stored == TOTAL  # the counter moved in the same transactions
    assert max(resumes[1:]) < RESUME_WITHIN, resumes  # each restart after a crash (the first is a cold start)
    assert "that process is gone" in daemon.log.read_text(encoding="utf-8")
    assert all(n >= 2 for n in workers_seen), workers_seen  # the pool was running at each kill …
    assert orphans == [[]] * KILLS, orphans  # … and none of its processes outlived the daemon
    assert code == 0
