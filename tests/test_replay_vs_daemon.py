"""`monitor replay` gives the daemon's pages: one recorded stream through the replay command and through
the real Pipeline, driven poll by poll (then its rules tick) with a fixed clock, pages the same incidents
with the same kinds, severities and times — a first page held by quiet hours, a reminder, a recovery
and a reopening included."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from monitor.app.config import parse_config
from monitor.app.pipeline import Pipeline
from monitor.cli import app

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 6, 1, 21, 0, tzinfo=SHANGHAI)
MIN = timedelta(minutes=1)
STEP = MIN
TAIL = timedelta(hours=2)  # monitor replay runs on this long after the last mention
CONFIG = """
data_dir: {data}
sources:
  - {{name: 导出, type: jsonl, path: {feed}, interval: 1m}}
topics:
  - {{name: 鲜丰奶茶, keywords: [鲜丰奶茶]}}
rules:
  - {{name: 差评, type: frequency, count: 5, window: 10m, labels: [negative], resolve_after: 10m}}
incidents:
  quiet_hours: {{start: "22:00", end: "22:10", min_severity: II}}
"""


def stream() -> list[dict]:
    """Calm praise, a half-hour burst of complaints from 22:00 (its page held by quiet hours until 22:10),
    and a second burst from 23:20, within reopen_within (2h) of the first one's recovery."""
    def line(n: int, at: datetime, negative: bool) -> dict:
        text = f"鲜丰奶茶第{n}杯" + ("太难喝了，再也不买" if negative else "很好喝，推荐")
        return {"id": f"m{n}", "published_at": at.isoformat(), "text": text, "score": score(text), "author": f"网友{n}"}

    at = [(START + 10 * k * MIN, False) for k in range(6)]
    at += [(START + 60 * MIN + 2 * k * MIN, True) for k in range(16)]
    at += [(START + 140 * MIN + 2 * k * MIN, True) for k in range(11)]
    return [line(n, t, negative) for n, (t, negative) in enumerate(at)]


def score(text: str) -> float:
    return 0.1 if "难喝" in text else 0.9


class RecordedScores:
    """The stream's own scores, so the daemon's NLP stage agrees with the recorded labels."""

    version = "recorded-1"

    def score(self, text: str) -> float:
        return score(text)


def write(path, lines: list[dict], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.writelines(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)


def replayed(tmp_path, lines: list[dict]) -> list[tuple]:
    recorded, config = tmp_path / "recorded.jsonl", tmp_path / "replay.yaml"
    write(recorded, lines, "w")
    config.write_text(CONFIG.format(data=tmp_path / "replay-data", feed=tmp_path / "unused.jsonl"), encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(recorded), "--config", str(config), "--step", "1m"],
                                env={"MONITOR_CONFIG": None})
    assert result.exit_code == 0, result.output
    pages = [json.loads(x) for x in result.stdout.splitlines() if x.strip()]
    return [(p["incident_id"], p["topic"], p["rule"], p["kind"], p["severity"], p["at"]) for p in pages]


def daemon_pages(db, tmp_path, lines: list[dict]) -> list[tuple]:
    feed = tmp_path / "feed.jsonl"
    write(feed, [], "w")
    config = parse_config(CONFIG.format(data=tmp_path / "data", feed=feed))
    clock = [START.astimezone(timezone.utc)]
    pipeline = Pipeline(config, db, clock=lambda: clock[0], scorer=RecordedScores(), channels=[])
    sent = []
    deliver = pipeline.notifier.deliver
    pipeline.notifier.deliver = lambda alerts, now: (sent.extend(alerts), deliver(alerts, now))[1]
    pending = sorted(lines, key=lambda x: x["published_at"])
    end = datetime.fromisoformat(pending[-1]["published_at"]) + TAIL
    try:
        pipeline.warm_up()
        while True:  # what the daemon's jobs do each minute: poll the source, then the rules tick
            now = clock[0]
            due = [x for x in pending if datetime.fromisoformat(x["published_at"]) <= now]
            pending = pending[len(due):]
            write(feed, due)
            report = pipeline.poll("导出")
            assert report.error is None and report.stored == len(due)
            pipeline.tick()
            if now >= end and not pending:
                break
            clock[0] = now + STEP
    finally:
        pipeline.close()
    kind = {"resolved": "recovered"}
    return [(a.incident_id, a.topic, a.rule, kind.get(a.kind, a.kind), a.severity.value, a.at.isoformat())
            for a in sent]


def test_replay_and_the_daemon_send_the_same_pages(db, tmp_path):
    lines = stream()

    daemon = daemon_pages(db, tmp_path, lines)
    replay = replayed(tmp_path, lines)

    assert replay == daemon
    local = [(kind, datetime.fromisoformat(at).astimezone(SHANGHAI).strftime("%H:%M")) for *_, kind, _, at in daemon]
    assert local[0] == ("firing", "22:10")  # fired at 22:08, held by quiet hours until they end
    assert {"reminder", "recovered", "reopened"} <= {kind for kind, _ in local}
    assert [i for i, *_ in daemon] == [1] * len(daemon)  # one incident, reopened rather than opened again
