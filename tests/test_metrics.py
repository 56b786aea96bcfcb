"""/metrics (Prometheus) and /healthz on the daemon's HTTP listener, scraped over a real socket."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx

from alerts.incidents import IncidentManager
from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.app.metrics import health
from tests.factories import T0, make_match


def sample(text: str, name: str, **labels) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_and_healthz_are_served(db, tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": str(i), "text": f"鲜丰奶茶第{i}杯", "published_at": "2026-03-15T12:00:00+08:00"},
                                        ensure_ascii=False) + "\n" for i in range(3)), encoding="utf-8")
    config = parse_config(f"""
http: {{bind: "127.0.0.1:0"}}
sources:
  - {{name: export, type: jsonl, path: {jsonl}, interval: 1s}}
  - {{name: dead, type: rss, url: "http://127.0.0.1:9/feed", interval: 1s, timeout: 1s}}
topics:
  - {{name: 鲜丰奶茶, keywords: [鲜丰]}}
""")
    IncidentManager(db).handle([make_match(topic="鲜丰奶茶")], T0)
    daemon = Daemon(config, db=db)
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = httpx.get(f"{daemon.httpd.url}/metrics", timeout=5).text
            if (sample(text, "yuqing_mentions_stored_total", source="export") or 0) >= 3 and \
                    (sample(text, "yuqing_source_failures_total", source="dead") or 0) >= 1:
                break
            time.sleep(0.3)
        resp = httpx.get(f"{daemon.httpd.url}/metrics", timeout=5)
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.text
        assert sample(text, "yuqing_mentions_stored_total", source="export") == 3
        assert sample(text, "yuqing_mentions_fetched_total", source="export") >= 3
        assert sample(text, "yuqing_polls_total", outcome="ok", source="export") >= 1
        assert sample(text, "yuqing_source_failures_total", source="dead") >= 1
        assert sample(text, "yuqing_polls_total", outcome="failed", source="dead") >= 1
        assert sample(text, "yuqing_incidents", severity="IV", status="open") == 1
        assert sample(text, "yuqing_source_consecutive_failures", source="dead") >= 1
        assert sample(text, "yuqing_scoring_seconds_count") >= 1
        assert sample(text, "yuqing_rule_evaluations_total") >= 1

        ok = httpx.get(f"{daemon.httpd.url}/healthz", timeout=5)
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
    finally:
        assert daemon.stop(grace=timedelta(seconds=5))


def test_health_reports_lost_lease_and_stalled_polling():
    status, body = health(now=T0, lease_held=True, overdue={}, started_at=T0)
    assert status == 200 and json.loads(body)["problems"] == []
    status, body = health(now=T0, lease_held=False, overdue={"weibo": timedelta(seconds=400)}, started_at=T0)
    assert status == 503
    assert json.loads(body)["problems"] == ["lost the database lease", "polling stalled: weibo 400s"]
