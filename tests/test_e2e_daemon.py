"""End to end with real sockets: a feed server on 127.0.0.1 turns negative, the daemon
(APScheduler, the real default sentiment model, real storage) opens exactly one incident and delivers exactly
one webhook to a local receiver; a restart on the same database pages nothing again.

The "broken" source (HTTP 503 on every poll) is a separate, legitimate incident: the
default source-health rule (数据源异常) pages once to the same webhook after three
consecutive failures. So the receiver gets exactly one page per incident: the spike and
the broken source."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.app.demo_feed import DemoFeedServer
from monitor.storage.models import IncidentRow, MentionRow, NotificationRow, SourceStateRow
from nlp.sentiment import scorer_from_config
from tests.servers import LocalServer, Response

CALM = ["鲜丰奶茶新品很好喝，推荐", "店员很热情，鲜丰奶茶点赞", "鲜丰奶茶的芋泥波波太好喝了，开心"]
COMPLAINTS = [
    "喝了鲜丰奶茶拉肚子，投诉无门，要求退款！",
    "鲜丰奶茶客服态度极差，维权到底",
    "在鲜丰奶茶吃出异物，已经投诉到12315",
    "鲜丰奶茶退款一周了还没到账，骗子公司",
    "鲜丰奶茶喝完肚子疼了一晚上，投诉",
    "鲜丰奶茶卫生太差了，必须曝光，要求退款",
    "鲜丰奶茶食品安全出问题，拉肚子，维权",
    "鲜丰奶茶客服不理人，投诉无门，退款",
]

CONFIG = """
data_dir: {data_dir}
sources:
  - name: feed
    type: rss
    url: {feed}
    interval: 1s
    timeout: 2s
  - name: broken
    type: rss
    url: {broken}
    interval: 1s
    timeout: 2s
    retries: 0
topics:
  - name: 鲜丰奶茶
    keywords: [鲜丰奶茶]
rules:
  - name: 负面激增
    type: negative_spike
    window: 5m
    reference: 1h
    min_current: 5
channels:
  - name: ops
    type: webhook
    url: {hook}/hook?access_token=TOKEN123
scheduler:
  rules_interval: 1s
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    scorer = scorer_from_config(parse_config(f"data_dir: {tmp_path_factory.mktemp('nlp')}"))  # the pipeline's default
    assert all(scorer.score(t) >= 0.4 for t in CALM)  # preconditions on the real model
    assert all(scorer.score(t) < 0.4 for t in COMPLAINTS)
    lines = [dict(id=f"calm-{i}", offset=-3 * 3600 + i * 500, text=CALM[i % len(CALM)]) for i in range(20)]
    lines += [dict(id=f"burst-{i}", offset=2 + i * 0.2, text=t) for i, t in enumerate(COMPLAINTS)]
    path = tmp_path_factory.mktemp("scenario") / "scenario.jsonl"
    path.write_text("\n".join(json.dumps(dict(l, author="网友", url=f"https://weibo.com/1/{l['id']}", followers=10),
                                         ensure_ascii=False) for l in lines) + "\n", encoding="utf-8")
    return path


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_feed_turning_negative_pages_exactly_once_and_restart_does_not_repage(db, scenario, tmp_path):
    hooks = []
    with LocalServer(lambda req: (hooks.append(req), Response(200, b"ok"))[1]) as receiver, \
            LocalServer(lambda req: Response(503, b"down")) as broken, \
            DemoFeedServer(scenario) as feed:
        text = CONFIG.format(data_dir=tmp_path, feed=feed.url, broken=broken.url + "/feed", hook=receiver.url)
        config = parse_config(text)

        def pages(topic: str) -> list:
            return [h for h in hooks if json.loads(h.body)["topic"] == topic]

        daemon = Daemon(config, db=db)
        daemon.start()
        try:
            assert wait_for(lambda: len(pages("鲜丰奶茶")) >= 1, timeout=30), "no page within 30 s"
            assert wait_for(lambda: len(pages("broken")) >= 1, timeout=10), "no 数据源异常 page"
            time.sleep(3)  # more polls and rule ticks happen; neither incident may page again
        finally:
            assert daemon.stop(grace=timedelta(seconds=5))
        assert len(hooks) == 2
        [spike] = pages("鲜丰奶茶")
        body = json.loads(spike.body)
        # IV from the magnitude, raised to III for the burst's crisis words (投诉, 维权, 退款)
        assert body["kind"] == "firing" and body["topic"] == "鲜丰奶茶" and body["severity"] == "III"
        assert body["numbers"]["current_negative"] >= 5
        assert spike.path == "/hook?access_token=TOKEN123"
        [health] = pages("broken")
        body = json.loads(health.body)
        assert body["kind"] == "firing" and body["rule"] == "数据源异常"
        assert "连续 3 次抓取失败" in body["reason"] and "HTTP 503" in body["reason"]

        with db.session() as s:
            incidents = {i.rule_type: i for i in s.scalars(select(IncidentRow))}
            assert sorted(incidents) == ["negative_spike", "source_health"]
            assert incidents["source_health"].topic == "broken" and incidents["source_health"].status == "open"
            assert s.scalar(select(func.count()).select_from(MentionRow)) == 28
            assert [n.status for n in s.scalars(select(NotificationRow))] == ["sent", "sent"]
            broken_state = s.get(SourceStateRow, "broken")
            assert broken_state.consecutive_failures >= 3
            assert "HTTP 503" in broken_state.last_error
            assert s.get(SourceStateRow, "feed").consecutive_failures == 0

        # A second start on the same database: warm-up replays the burst, but nothing is re-paged.
        db2_daemon = Daemon(config, db=type(db)(db.url))
        db2_daemon.start()
        try:
            time.sleep(3)
        finally:
            assert db2_daemon.stop(grace=timedelta(seconds=5))
        assert len(hooks) == 2
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(IncidentRow)) == 2
            assert s.scalar(select(func.count()).select_from(MentionRow)) == 28
