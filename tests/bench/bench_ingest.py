"""Ingest throughput of one RSS source, end to end: fetch → parse → normalise → dedup → store.

A local server on 127.0.0.1 serves an RSSHub-style Weibo feed; each poll brings ``--batch``
new items (a fifth of them reposts of earlier ones, so dedup has stories to build). The
pipeline is the daemon's (``Pipeline.poll``) on a fresh SQLite database in a temp dir, with
a constant scorer so the sentiment model (another benchmark's business) does not dominate.

The baseline, measured in the same process on the same bytes, is parsing alone
(``sources.rss.parse_feed``): the ratio says what share of the parse-only rate survives
the rest of the path. A stage breakdown (per item) shows where the time goes.

Run: ``.venv/bin/python tests/bench/bench_ingest.py [--polls 10 --batch 200 --database-url URL]``
(``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from monitor.app.config import parse_config  # noqa: E402
from monitor.app.pipeline import Pipeline  # noqa: E402
from monitor.storage import Database  # noqa: E402
from monitor.storage.models import MentionRow  # noqa: E402
from sources.normalise import normalise  # noqa: E402
from sources.rss import parse_feed  # noqa: E402
from tests.servers import LocalServer, Response  # noqa: E402

SUBJECTS = ["星河手机X5", "鲜丰奶茶", "云帆快递", "青禾超市", "极光汽车", "蓝鲸外卖", "木棉酒店", "北辰银行"]
CLAUSES = ["充电半小时就烫手", "客服电话打了三次都没人接", "退款一周了还没到账", "包装破损还不给换", "喝完肚子疼了一晚上",
           "售后说是正常现象", "价格比上周贵了一倍", "送货员态度很差", "新品很好喝，推荐", "拍照效果很好，夜景清晰",
           "物流很快，第二天就到了", "店员很热情，点赞", "会员积分突然清零了", "发票到现在都没开", "排队排了一个多小时",
           "APP一直闪退登不上", "优惠券用不了", "说好的赠品没有送", "房间隔音太差", "贷款审批拖了一个月"]
PLACES = ["杭州", "成都", "北京朝阳", "上海浦东", "广州天河", "武汉光谷", "西安", "南京新街口", "深圳南山", "重庆"]
ENDINGS = ["大家评评理", "再也不来了", "希望官方给个说法", "已经投诉到12315", "体验还不错", "总体满意",
           "下次还会买", "气死我了", "有同样遭遇的吗", "先记录一下"]
T0 = datetime(2024, 6, 11, 4, 0, tzinfo=timezone.utc)


class ConstantScorer:
    version = "bench-constant"

    def score(self, text: str) -> float:
        return 0.5


def make_items(count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    items: list[dict] = []
    for i in range(count):
        at = T0 + timedelta(seconds=30 * i)
        if items and rng.random() < 0.2:  # a repost of an earlier post
            orig = rng.choice(items[-50:])
            text = f"{rng.choice(['同感', '转发', '顶', '太真实了'])} //@{orig['author']}:{orig['text']}"
        else:
            clauses = "，".join(rng.sample(CLAUSES, 3))
            text = (f"{rng.choice(PLACES)}的{rng.choice(SUBJECTS)}，{clauses}，{rng.choice(ENDINGS)}"
                    f"[{rng.choice(['怒', '哈哈', '泪', '赞'])}]")
        items.append({"id": f"https://weibo.com/{5500000000 + i}/Oc{i:07d}", "author": f"用户{i}",
                      "text": text, "at": at, "repost": "//@" in text})
    return items


def rss(items: list[dict]) -> bytes:
    body = [f"<item><title><![CDATA[{it['text'][:40]}]]></title>"
            f"<description><![CDATA[{it['text']}<br><img src=\"https://wx1.sinaimg.cn/x{n}.jpg\">]]></description>"
            f"<pubDate>{format_datetime(it['at'])}</pubDate><guid isPermaLink=\"false\">{escape(it['id'])}</guid>"
            f"<link>{escape(it['id'])}</link><author><![CDATA[{it['author']}]]></author></item>"
            for n, it in enumerate(reversed(items))]
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>微博关键词</title>'
            + "".join(body) + "</channel></rss>").encode("utf-8")


def measure(polls: int, batch: int, database_url: str | None) -> dict:
    items = make_items(polls * batch)
    bodies = [rss(items[k * batch:(k + 1) * batch]) for k in range(polls)]

    # baseline: parsing alone, same bytes, best of three
    parse_s = min(_timed(lambda: [parse_feed("bench", b) for b in bodies]) for _ in range(3))

    # stages, per item (parse → normalise), for the breakdown
    parsed = [parse_feed("bench", b)[0] for b in bodies]
    fetched_at = T0 + timedelta(days=1)
    norm_s = _timed(lambda: [normalise(i, source="bench", tz="Asia/Shanghai", fetched_at=fetched_at)
                             for p in parsed for i in p])

    runs = [_ingest_run(bodies, polls, fetched_at, database_url) for _ in range(1 if database_url else 3)]
    e2e_s, dedup_s, stored, reposts = min(runs)  # best of three, each on a fresh database
    total = polls * batch
    assert stored == total, (stored, total)
    return {"items": total, "reposts": sum(i["repost"] for i in items), "parse_s": parse_s, "normalise_s": norm_s,
            "dedup_s": dedup_s, "e2e_s": e2e_s, "linked_to_a_story": reposts}


def _ingest_run(bodies: list[bytes], polls: int, fetched_at: datetime, database_url: str | None):
    """One end-to-end run on a fresh database: (seconds, dedup seconds, stored, linked to a story)."""
    served = {"k": 0}
    with tempfile.TemporaryDirectory() as tmp, LocalServer(lambda req: Response(200, bodies[served["k"]], {
            "Content-Type": "application/rss+xml; charset=utf-8"})) as server:
        db = Database(database_url or f"sqlite:///{tmp}/bench.db")
        db.migrate()
        config = parse_config(json.dumps({"data_dir": tmp, "sources": [
            {"name": "bench", "type": "rss", "url": server.url + "/feed"}]}))
        pipeline = Pipeline(config, db, scorer=ConstantScorer(), channels=[], clock=lambda: fetched_at)
        pipeline.deduper.fingerprint("预热分词词典")  # jieba loads its dictionary once per process
        dedup_s = [0.0]
        link = pipeline.deduper.link

        def timed_link(mentions):
            started = time.perf_counter()
            try:
                return link(mentions)
            finally:
                dedup_s[0] += time.perf_counter() - started

        pipeline.deduper.link = timed_link
        stored = 0
        started = time.perf_counter()
        for k in range(polls):
            served["k"] = k
            report = pipeline.poll("bench")
            assert report.error is None, report.error
            stored += report.stored
        e2e_s = time.perf_counter() - started
        pipeline.close()
        with db.session() as s:
            reposts = s.scalar(select(func.count()).select_from(MentionRow).where(MentionRow.story_id.is_not(None)))
        db.dispose()
    return e2e_s, dedup_s[0], stored, reposts


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--polls", type=int, default=10)
    ap.add_argument("--batch", type=int, default=200, help="new items per poll")
    ap.add_argument("--database-url", default=None,
                    help="an empty database to use once (default: SQLite in a temp dir, best of three runs)")
    args = ap.parse_args(argv)
    r = measure(args.polls, args.batch, args.database_url)
    n = r["items"]
    parse_rate, e2e_rate = n / r["parse_s"], n / r["e2e_s"]
    print(f"ingest: one RSS source, {args.polls} polls × {args.batch} new items; {r['reposts']} generated as "
          f"reposts, {r['linked_to_a_story']} linked to an earlier story by dedup")
    print(f"  baseline parse only       {parse_rate:10.0f} items/s")
    print(f"  end to end (fetch→store)  {e2e_rate:10.0f} items/s   ratio {e2e_rate / parse_rate:.3f} of parse-only")
    print("  per item: parse {:.3f} ms, normalise {:.3f} ms, dedup {:.3f} ms, whole poll {:.3f} ms".format(
        *(1000 * r[k] / n for k in ("parse_s", "normalise_s", "dedup_s", "e2e_s"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
