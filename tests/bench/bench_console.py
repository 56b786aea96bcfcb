"""Server time of the web console's heavy screens with a realistic amount of data (issue 12, "Performance").

Seeds 10,000 incidents (mixed statuses, severities and topics, each with a timeline and plan steps; one
open incident with evidence and a long timeline) and 1,000,000 mentions (20 topics, 5 sources, 90 days,
Chinese texts from a small vocabulary, labels, scores, reposts) into a fresh PostgreSQL database (created
and dropped here; bulk COPY), then asks the Starlette app in-process (``httpx.ASGITransport``, logged
in as a viewer) for the queue, filtered queues, an incident page, its chart, a mention's story and
mention searches (text, topic, label, time window, a second page). Each figure is the best and median
of ``--runs`` requests after one warm-up, in ms and as a ratio to a baseline measured in the same run:
the login page (a template through the same middleware, no query). Goals (the issue): queue and
incident page under 300 ms, mention search under 500 ms. The same runs on SQLite with a smaller seed
(``--sqlite-mentions``, default 100,000; 0 skips it), for comparison.

Run: ``.venv/bin/python tests/bench/bench_console.py [--mentions N --incidents N --runs N --sql]``
with ``MONITOR_BENCH_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``:
only used to create the bench database). ``make bench`` runs it. ``--keep`` leaves the seeded
PostgreSQL database in place, ``--reuse NAME`` measures one kept earlier (migrated to the newest
revision first), ``--sql`` prints each request's slowest statements.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.app.config import parse_config  # noqa: E402
from monitor.app.reports import build_incident_report  # noqa: E402
from monitor.app.service import Context, users  # noqa: E402
from monitor.storage import Database  # noqa: E402
from monitor.web.app import Settings, create_app  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench password 123"
DAYS = 90
TOPICS = ["星河手机", "鲜丰奶茶", "云帆快递", "青禾超市", "极光汽车", "蓝鲸外卖", "木棉酒店", "北辰银行", "白鹭航空", "金穗米业",
          "远山教育", "海盐医美", "松果家居", "赤兔电动车", "麦田书店", "晴川保险", "星火游戏", "长风物流", "竹影茶饮", "银杏医院"]
TOPIC_WEIGHTS = [1 / (k + 1) for k in range(len(TOPICS))]  # Zipf-like: the first topic is the loudest
SOURCES = ["微博搜索", "抖音热榜", "新闻RSS", "论坛爬虫", "公众号推送"]
NEGATIVE = ["充电半小时就烫手", "客服电话打了三次都没人接", "退款一周了还没到账", "包装破损还不给换", "喝完肚子疼了一晚上",
            "售后说是正常现象", "价格比上周贵了一倍", "送货员态度很差", "会员积分突然清零了", "发票到现在都没开",
            "排队排了一个多小时", "APP一直闪退登不上", "优惠券用不了", "说好的赠品没有送", "房间隔音太差", "贷款审批拖了一个月"]
POSITIVE = ["新品很好喝，推荐", "拍照效果很好，夜景清晰", "物流很快，第二天就到了", "店员很热情，点赞", "性价比很高",
            "服务周到，下次还来"]
NEUTRAL = ["今天路过看了一下", "听说下周有活动", "朋友推荐的", "和之前差不多", "第一次用"]
PLACES = ["杭州", "成都", "北京朝阳", "上海浦东", "广州天河", "武汉光谷", "西安", "南京新街口", "深圳南山", "重庆"]
ENDINGS = ["大家评评理", "再也不来了", "希望官方给个说法", "已经投诉到12315", "体验还不错", "总体满意", "下次还会买",
           "气死我了", "有同样遭遇的吗", "先记录一下"]
RARE = "电池鼓包冒烟"  # in about one mention of 10,000: the search that has to look at every row
RULES = [("负面激增", "negative_spike"), ("提及量突增", "frequency"), ("大V发声", "influencer"), ("危机词", "keyword"),
         ("负面占比", "negative_share")]
MENTION_COLUMNS = ["id", "source", "external_id", "url", "author", "title", "text", "raw_text", "content_hash",
                   "published_at", "fetched_at", "sentiment_score", "sentiment_label", "model_version", "topics",
                   "platform", "author_followers", "likes", "reposts", "comments", "simhash", "story_id", "dup_kind",
                   "repost_count", "crisis_words"]
INCIDENT_COLUMNS = ["id", "group_key", "topic", "rule", "rule_type", "severity", "status", "title", "reason", "numbers",
                    "opened_at", "updated_at", "acked_at", "acked_by", "resolved_at", "resolved_by",
                    "last_notified_at", "plan", "assignee", "last_signal_at", "reopened_count", "escalation_step",
                    "escalation_round", "next_escalation_at"]
EVENT_COLUMNS = ["incident_id", "at", "kind", "actor", "message", "data"]
STEP_COLUMNS = ["incident_id", "position", "plan", "title", "owner", "due_at", "reply", "status", "done_at", "done_by"]
GOALS = {"queue": 300, "incident": 300, "search": 500}  # ms of server time (issue 12)
NOTES = {"chart": "none: an image the page loads after it", "data": "the chart's queries"}


def ts(at: datetime) -> str:
    """A naive-UTC timestamp as the models store it (``UTCDateTime``), for COPY and SQLite alike."""
    return at.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# -- data ---------------------------------------------------------------------------------------
def mention_rows(n: int, now: datetime, seed: int = 12) -> Iterator[tuple]:
    """``n`` mentions over the last ``DAYS`` days, ids in time order; 15% reposts of a recent root."""
    rng = random.Random(seed)
    start, span = now - timedelta(days=DAYS), timedelta(days=DAYS).total_seconds()
    story = [0] * (n + 1)
    reposts = [0] * (n + 1)
    for i in range(1, n + 1):
        if i > 100 and rng.random() < 0.15:
            root = rng.randint(max(1, i - 2000), i - 1)
            root = story[root] or root
            story[i], reposts[root] = root, reposts[root] + 1
    for i in range(1, n + 1):
        at = start + timedelta(seconds=span * i / (n + 1) + rng.uniform(-300, 300))
        topics = rng.choices(TOPICS, TOPIC_WEIGHTS, k=2 if rng.random() < 0.1 else 1) if rng.random() > 0.05 else []
        mood = rng.random()
        pool, label, score = ((NEGATIVE, "negative", rng.uniform(0.02, 0.35)) if mood < 0.3 else
                              (NEUTRAL, "neutral", rng.uniform(0.4, 0.6)) if mood < 0.75 else
                              (POSITIVE, "positive", rng.uniform(0.65, 0.98)))
        subject = "和".join(dict.fromkeys(topics)) or rng.choice(["这家店", "这个牌子", "他们家"])
        clauses = "，".join(rng.sample(pool, 2) + [rng.choice(NEGATIVE + POSITIVE + NEUTRAL)])
        body = f"{rng.choice(PLACES)}的{subject}，{clauses}，{rng.choice(ENDINGS)}"
        if rng.random() < 0.0001:
            body += f"，{RARE}"
        if story[i]:
            body = f"{rng.choice(['转发', '同感', '顶'])} //@用户{story[i] % 50000}:{body}"
        source = SOURCES[i % len(SOURCES)]
        yield (i, source, f"{source}-{i}", f"https://example.com/{i % len(SOURCES)}/{i}", f"用户{rng.randrange(50000)}",
               None, body, body + " [图片]", f"{rng.getrandbits(128):032x}", ts(at), ts(at + timedelta(seconds=40)),
               round(score, 3), label, "bench-1", json.dumps(topics, ensure_ascii=False), "weibo",
               int(rng.paretovariate(1.2) * 50), rng.randrange(500), reposts[i], rng.randrange(80),
               rng.getrandbits(64) - 2 ** 63, story[i] or None, "near" if story[i] else None, reposts[i],
               '["爆炸"]' if RARE in body else "[]")


def incident_rows(n: int, n_mentions: int, now: datetime, seed: int = 13) -> tuple[list, list, list]:
    """Incidents (ids in opened order), their timeline events and plan steps. The newest incident of up
    to 90 groups is still active; the newest of all (id ``n``) is open, with evidence and a long timeline."""
    rng = random.Random(seed)
    start = now - timedelta(days=DAYS)
    incidents, events, steps = [], [], []
    active: dict[str, str] = {}
    for i in range(n, 0, -1):  # newest first, so the active ones are the latest of their group
        opened = start + timedelta(days=DAYS * (i - 0.5) / n)
        topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
        rule, rule_type = rng.choice(RULES)
        group = f"{topic}|{rule}"
        if group not in active and len(active) < 90 and (i == n or rng.random() < 0.5):
            status = active[group] = "open" if i == n or len(active) % 3 else "acknowledged"
        else:
            status = "resolved"
        severity = rng.choices(["IV", "III", "II", "I"], [50, 30, 15, 5])[0]
        acked = opened + timedelta(minutes=rng.randint(2, 90)) if status != "open" else None
        resolved = acked + timedelta(hours=rng.uniform(0.5, 48)) if status == "resolved" else None
        numbers = {"current_negative": rng.randint(20, 400), "current_total": rng.randint(400, 2000),
                   "negative_share": round(rng.random(), 2), "expected": round(rng.uniform(5, 50), 2),
                   "ratio": round(rng.uniform(2, 9), 2), "z": round(rng.uniform(3, 12), 2), "hot_buckets": 3,
                   "count": rng.randint(10, 300), "threshold": 50, "window": "10m", "reference": "1d"}
        last = resolved or acked or opened
        incidents.append((i, group, topic, rule, rule_type, severity, status, f"[{topic}] {rule}",
                          f"{topic} 最近 10 分钟负面提及 {numbers['current_negative']} 条，为基准的 {numbers['ratio']} 倍",
                          json.dumps(numbers, ensure_ascii=False), ts(opened), ts(last), acked and ts(acked),
                          "值班员" if acked else None, resolved and ts(resolved), "值班员" if resolved else None,
                          ts(opened + timedelta(seconds=5)), "负面舆情应急", rng.choice([None, "张三", "李四"]),
                          ts(opened), 0, 0, 0, ts(now + timedelta(minutes=10)) if status == "open" else None))
        near = max(1, int(n_mentions * (i - 0.5) / n))
        evidence = sorted({min(n_mentions, max(1, near - rng.randrange(300))) for _ in range(10)}, reverse=True)
        timeline = [(opened, "opened", "system", "事件开启", numbers),
                    (opened, "evidence", "system", "证据：10 条提及", {"mention_ids": evidence}),
                    (opened + timedelta(seconds=5), "notified", "system", "已通知 企业微信", {})]
        timeline += [(opened + timedelta(minutes=k), "step", "值班员", f"完成第 {k} 步", {"position": k})
                     for k in range(1, rng.randint(1, 4) + 1)]
        if acked:
            timeline.append((acked, "acknowledged", "值班员", "已确认，处理中", {}))
        if resolved:
            timeline.append((resolved, "resolved", "值班员", "已处置完毕", {}))
        if i == n:  # the incident page measured: a long timeline (reminders, notes, evidence updates)
            timeline += [(opened + timedelta(minutes=k), ["note", "escalated", "evidence"][k % 3], "值班员",
                          f"第 {k} 次跟进：已联系门店核实情况", {"mention_ids": evidence[:3]} if k % 3 == 2 else {})
                         for k in range(1, 241)]
        events += [(i, ts(at), kind, actor, message, json.dumps(data, ensure_ascii=False))
                   for at, kind, actor, message, data in timeline]
        steps += [(i, k, "负面舆情应急", f"第 {k} 步：核实并回应", ["公关部", "客服部"][k % 2],
                   ts(opened + timedelta(minutes=30 * k)), f"您好，关于{topic}的问题我们已在核实，稍后回复。",
                   "done" if status == "resolved" else "pending", resolved and ts(resolved), "值班员" if resolved else None)
                  for k in range(1, 5)]
    return incidents[::-1], events, steps


def copy_rows(db: Database, table: str, columns: Sequence[str], rows: Iterable[tuple], chunk: int = 20000) -> None:
    """Bulk insert: COPY on PostgreSQL (the text format; generated values have no tab, newline or
    backslash), executemany on SQLite."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.is_sqlite:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= chunk:
                    cur.executemany(sql, batch)
                    batch = []
            cur.executemany(sql, batch)
        else:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                lines: list[str] = []
                for row in rows:
                    lines.append("\t".join("\\N" if v is None else str(v) for v in row))
                    if len(lines) >= chunk:
                        copy.write("\n".join(lines) + "\n")
                        lines = []
                if lines:
                    copy.write("\n".join(lines) + "\n")
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()


def seed(db: Database, n_mentions: int, n_incidents: int, now: datetime) -> None:
    """Fill a migrated, empty database. On PostgreSQL the mentions' secondary indexes are dropped and
    rebuilt from their own definitions around the COPY (several times faster than updating them)."""
    started = time.perf_counter()
    rebuild: list[str] = []
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            indexes = conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'mentions' AND schemaname = "
                "current_schema() AND indexname NOT IN (SELECT conname FROM pg_constraint)")).all()
            for name, ddl in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
                rebuild.append(ddl)
    copy_rows(db, "mentions", MENTION_COLUMNS, mention_rows(n_mentions, now))
    if rebuild:
        with db.engine.begin() as conn:
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
            for ddl in rebuild:
                conn.execute(text(ddl))
    incidents, events, steps = incident_rows(n_incidents, n_mentions, now)
    copy_rows(db, "incidents", INCIDENT_COLUMNS, incidents)
    copy_rows(db, "incident_events", EVENT_COLUMNS, events)
    copy_rows(db, "incident_steps", STEP_COLUMNS, steps)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    print(f"  seeded {n_mentions:,} mentions, {n_incidents:,} incidents ({len(events):,} timeline events, "
          f"{len(steps):,} plan steps) in {time.perf_counter() - started:.0f} s", flush=True)


# -- measuring ------------------------------------------------------------------------------------
def cases(n_incidents: int, story_root: int, now: datetime) -> list[tuple[str, str, str]]:
    """(goal kind, label, path) of every request measured; ``{next}`` is the first page's next link."""
    day = (now - timedelta(days=30)).date()
    return [
        ("queue", "queue /incidents", "/incidents"),
        ("queue", "queue rows (15 s refresh)", "/incidents?partial=rows"),
        ("queue", "queue status+severity", "/incidents?status=resolved&severity=II"),
        ("queue", "queue topic+since 30d", f"/incidents?topic={TOPICS[5]}&since=30d"),
        ("queue", "queue page 20", "/incidents?page=20"),
        ("incident", "incident page (260 events)", f"/incidents/{n_incidents}"),
        ("chart", "incident chart.svg (image)", f"/incidents/{n_incidents}/chart.svg"),
        ("search", "mention + story", f"/mentions/{story_root}"),
        ("search", "search, no filter", "/mentions"),
        ("search", "search text (common)", "/mentions?q=退款"),
        ("search", "  its page 2", "{next}"),
        ("search", "search text (rare)", f"/mentions?q={RARE}"),
        ("search", "search text (rare, 2 chars)", f"/mentions?q={RARE[2:4]}"),
        ("search", "search text (no match)", "/mentions?q=没有这种说法"),
        ("search", "search topic", f"/mentions?topic={TOPICS[7]}"),
        ("search", "  its page 2", "{next}"),
        ("search", "search label", "/mentions?label=positive"),
        ("search", "search a day 30 d ago", f"/mentions?since={day}&until={day}"),
        ("search", "topic+label+7d", f"/mentions?topic={TOPICS[15]}&label=negative&since=7d"),
        ("search", "topic+text", f"/mentions?topic={TOPICS[3]}&q=发票"),
        ("search", "source+rare text", f"/mentions?source={SOURCES[2]}&q={RARE}"),
    ]


class SqlLog:
    """Statements run during one request and their times (``--sql``)."""

    def __init__(self, db: Database):
        self.items: list[tuple[float, str]] = []
        event.listen(db.engine, "before_cursor_execute", self._before)
        event.listen(db.engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self.items.append((time.perf_counter() - conn.info.pop("bench_t"), f"{statement} -- {parameters}"))


async def measure(ctx: Context, n_incidents: int, runs: int, show_sql: bool) -> list[tuple]:
    now = datetime.now(timezone.utc)
    app = create_app(ctx, settings=Settings(secret="bench-secret-" + "x" * 32))
    transport = httpx.ASGITransport(app=app)
    with ctx.db.session() as s:
        root = s.execute(text("SELECT id FROM mentions WHERE repost_count > 0 ORDER BY repost_count DESC, id "
                              "LIMIT 1")).scalar()
    log = SqlLog(ctx.db) if show_sql else None
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as anon, \
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        page = (await client.get("/login")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        resp = await client.post("/login", data={"name": "viewer", "password": PASSWORD, "csrf_token": token,
                                                 "next": "/"})
        assert resp.status_code == 303, resp.text[:300]

        async def timed(c: httpx.AsyncClient, path: str) -> tuple[float, float, str]:
            resp = await c.get(path)  # warm-up: templates compiled, connections pooled
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
            times = []
            for _ in range(runs):
                if log:
                    log.items.clear()
                started = time.perf_counter()
                resp = await c.get(path)
                times.append(1000 * (time.perf_counter() - started))
            return min(times), statistics.median(times), resp.text

        base_best, base_median, _ = await timed(anon, "/login")
        results = [("baseline", "baseline GET /login (anonymous)", "/login", base_best, base_median)]
        next_link = None
        for kind, label, path in cases(n_incidents, root, now):
            if path == "{next}":
                path = next_link
            best, median, body = await timed(client, path)
            found = re.search(r'href="(/mentions\?[^"]*before_id=\d+[^"]*)"', body)
            next_link = found.group(1).replace("&amp;", "&") if found else None
            results.append((kind, label, path, best, median))
            if kind == "chart":  # how much of it is the report's data (queries), not matplotlib's drawing
                data = []
                for _ in range(runs):
                    started = time.perf_counter()
                    build_incident_report(ctx.db, n_incidents, tz=ctx.tz, now=now)
                    data.append(1000 * (time.perf_counter() - started))
                results.append(("data", "  its data (no drawing)", path, min(data), statistics.median(data)))
            if log:
                slow = sorted(log.items, reverse=True)[:3]
                print(f"    {label}: {len(log.items)} statements, slowest: "
                      + " | ".join(f"{1000 * t:.1f} ms {sql[:400]!r}" for t, sql in slow))
    return results


def report(title: str, results: list[tuple]) -> bool:
    _, _, _, base, _ = results[0]
    print(f"{title}\n  {'request':<30} {'best ms':>8} {'median':>8} {'× base':>8}  goal (median)")
    missed = False
    for kind, label, _, best, median in results:
        goal = GOALS.get(kind)
        verdict = NOTES.get(kind, "") if goal is None else f"< {goal} ms " + ("ok" if median < goal else "MISSED")
        missed |= goal is not None and median >= goal
        print(f"  {label:<30} {best:8.1f} {median:8.1f} {median / base:8.1f}  {verdict}")
    return not missed


def run(url: str, n_mentions: int, n_incidents: int, runs: int, show_sql: bool, *, fresh: bool = True) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(json.dumps({"data_dir": tmp, "topics": [{"name": t, "keywords": [t]} for t in TOPICS]},
                                         ensure_ascii=False))
        db = Database(url)
        db.migrate()
        ctx = Context(config, db)
        if fresh:
            seed(db, n_mentions, n_incidents, datetime.now(timezone.utc))
            users.add(ctx, "viewer", PASSWORD, role="viewer", now=datetime.now(timezone.utc))
        with db.session() as s:
            n_mentions = s.execute(text("SELECT count(*) FROM mentions")).scalar()
            n_incidents = s.execute(text("SELECT max(id) FROM incidents")).scalar()
        results = asyncio.run(measure(ctx, n_incidents, runs, show_sql))
        db.dispose()
    kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    return report(f"{kind}: {n_mentions:,} mentions, {n_incidents:,} incidents; server time per request "
                  f"(best / median of {runs}), ratio of the median to the baseline's", results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--incidents", type=int, default=10_000)
    ap.add_argument("--sqlite-mentions", type=int, default=100_000, help="0: skip the SQLite comparison")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sql", action="store_true", help="print each request's slowest SQL statements")
    ap.add_argument("--keep", action="store_true", help="leave the PostgreSQL bench database in place")
    ap.add_argument("--reuse", metavar="NAME", help="measure a PostgreSQL bench database kept earlier")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    server = make_url(os.environ.get("MONITOR_BENCH_DATABASE_URL") or DEFAULT_PG)
    name = args.reuse or f"monitor_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    ok = True
    try:
        if not args.reuse:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
        print(f"== PostgreSQL database {name} on {server.host}:{server.port}", flush=True)
        url = server.set(database=name).render_as_string(hide_password=False)
        ok &= run(url, args.mentions, args.incidents, args.runs, args.sql, fresh=not args.reuse)
    finally:
        if not (args.keep or args.reuse):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif not args.reuse:
            print(f"  kept: rerun with --reuse {name}")
        admin.dispose()
    if args.sqlite_mentions:
        with tempfile.TemporaryDirectory() as tmp:
            print("== SQLite", flush=True)
            ok &= run(f"sqlite:///{tmp}/bench.db", args.sqlite_mentions, args.incidents, args.runs, args.sql)
    print(f"bench_console: {time.perf_counter() - started:.0f} s; every goal {'met' if ok else 'NOT met'}. "
          f"Reproduce: .venv/bin/python tests/bench/bench_console.py (or make bench)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
