"""End to end with real sockets: an RSSHub stand-in on 127.0.0.1 serves the recorded 微博热搜 list with the
brand at rank 8; the daemon (APScheduler, the real default sentiment model, real storage) pages once, II, to
a local webhook receiver, the list's later polls page nothing more, and once the entry drops off the list
the incident recovers (已恢复). The entries are stored but are no volume for the other rules."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from monitor.app.config import parse_config
from monitor.app.daemon import Daemon
from monitor.storage.models import IncidentRow, MentionCountRow, MentionRow
from tests.servers import LocalServer, Response
from tests.source_helpers import RSS_TYPE

WEIBO_HOT = (Path(__file__).resolve().parent.parent / "fixtures" / "hotlist" / "weibo_hot_rsshub.xml").read_bytes()
# the same list a while later: the brand's entry has dropped off
WITHOUT_BRAND = re.sub(rb"<item>(?:(?!</item>).)*\xe9\xb2\x9c\xe4\xb8\xb0(?:(?!</item>).)*</item>", b"", WEIBO_HOT,
                       flags=re.S)

CONFIG = """
data_dir: {data_dir}
sources:
  - name: 微博热搜
    type: hotlist
    preset: weibo_hot
    rsshub: {rsshub}
    interval: 1s
    timeout: 2s
topics:
  - name: 鲜丰奶茶
    keywords: [鲜丰奶茶, 鲜丰]
rules:
  - name: 上热搜
    type: hotlist
    resolve_after: 1s
channels:
  - name: ops
    type: webhook
    url: {hook}/hook
scheduler:
  rules_interval: 1s
"""


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_brand_on_weibo_hot_search_pages_once_through_the_daemon(db, tmp_path):
    hooks, polls, served = [], [], {"list": WEIBO_HOT}
    assert WITHOUT_BRAND.count(b"<item>") == WEIBO_HOT.count(b"<item>") - 1
    with LocalServer(lambda req: (hooks.append(req), Response(200, b"ok"))[1]) as receiver, \
            LocalServer(lambda req: (polls.append(req), Response(200, served["list"], {"Content-Type": RSS_TYPE}))[1]) \
            as rsshub:
        config = parse_config(CONFIG.format(data_dir=tmp_path, rsshub=rsshub.url, hook=receiver.url))
        daemon = Daemon(config, db=db)
        daemon.start()
        try:
            # a fresh data dir builds the default sentiment model before the first poll (10–50 s on a busy machine)
            assert wait_for(lambda: hooks, timeout=120), "no page"
            seen = len(polls)
            assert wait_for(lambda: len(polls) >= seen + 3, timeout=20)  # the list polled again, unchanged
            assert len(hooks) == 1
            served["list"] = WITHOUT_BRAND
            assert wait_for(lambda: len(hooks) >= 2, timeout=30), "no 已恢复 after the entry dropped off"
        finally:
            assert daemon.stop(grace=timedelta(seconds=5))

    assert all(p.path == "/weibo/search/hot" for p in polls)
    page, recovered = hooks
    assert json.loads(recovered.body)["kind"] == "resolved"
    body = json.loads(page.body)
    assert (body["kind"], body["topic"], body["rule"], body["severity"]) == ("firing", "鲜丰奶茶", "上热搜", "II")
    assert body["reason"] == "「鲜丰奶茶」登上微博热搜第8名：鲜丰奶茶多名顾客喝后腹泻"
    assert body["numbers"]["rank"] == 8 and body["numbers"]["hot_list"] == "微博热搜"
    [evidence] = body["top_mentions"]
    assert evidence["url"].startswith("https://m.weibo.cn/search?containerid=100103type%3D1%26q%3D%E9%B2%9C")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(MentionRow)) == 51  # every entry stored once
        [incident] = s.scalars(select(IncidentRow))
        assert (incident.rule_type, incident.status, incident.severity) == ("hotlist", "resolved", "II")
        assert s.scalar(select(func.count()).select_from(MentionCountRow)) == 0  # a list's state, not volume
