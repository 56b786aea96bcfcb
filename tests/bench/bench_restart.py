"""Restart with N stored mentions: time to the first stored poll, peak RSS; `monitor incidents list`.

A SQLite database is bulk-loaded (sqlite3 executemany, indexes built afterwards) with N mentions
of the workload's 100 sources and 20 topics spread over the last 4 days, the 100 sources' state
rows and 300 incidents with their timelines — written at schema revision 0009 and then upgraded
to the tree's newest revision with its own migrations, as a production database would be. The
loaded database is cached (``$YUQING_BENCH_CACHE``, default /tmp/yuqing-bench-cache; at most 3 hours
old) so that a second tree is measured on the same rows.

Then the real daemon (``monitor run --config …``, the workload config of bench_workload.py: every
rule type, one webhook channel, sources on a local feed server) starts as a subprocess, and we
measure the time from spawning it until its first poll is stored (a mention row beyond the loaded
ones), with the log lines on the way (start, rules warmed up), and its peak RSS (VmHWM) once every
source has been polled once. A daemon above ``--max-rss`` or ``--timeout`` is killed and reported so.
Last, ``monitor incidents list`` (a subprocess) against the same database, with the interpreter's
bare start-up (``python -c pass``) measured in the same run as its baseline.

Run: ``.venv/bin/python tests/bench/bench_restart.py [--rows 100000,1000000] [--tree DIR]``
(``make bench`` runs the default, 100k rows; 10M rows need ~10 GB of disk for the cache).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload as wl  # noqa: E402

TREE = wl.select_tree(sys.argv)
BASE_REVISION = "0009"  # the schema the loader writes; later revisions are the tree's business
LOADER = 1  # bump when the loaded rows change (cache key)
SPAN = timedelta(days=4)
MAX_CACHE_AGE = 3 * 3600
INCIDENTS = 300


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(TREE), help="the checkout to measure (default: this one)")
    ap.add_argument("--rows", default="100000", help="stored mentions, comma list (e.g. 100000,1000000,10000000)")
    ap.add_argument("--max-rss", type=float, default=8.0, help="GB; a daemon above is killed (and reported)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the first stored poll")
    ap.add_argument("--no-cache", action="store_true", help="load the database afresh (and do not keep it)")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.rows.split(",")]
    print(f"restart: SQLite with N mentions over the last 4 days (100 sources, 20 topics) + {INCIDENTS} incidents; "
          "workload config (every rule type, webhook channel)")
    print(f"tree: {wl.tree_label(TREE)}", flush=True)
    results = {}
    for n in sizes:
        results[n] = measure(n, args)
        r = results[n]
        print(f"  {n:,} rows: first poll stored after {_fmt_s(r['first_poll_s'])}, peak RSS {r['peak_mb']:,.0f} MB",
              flush=True)
    report(results)
    return 0


def measure(rows: int, args) -> dict:
    from monitor.storage import Database

    with ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(wl.FeedServer(100, 20))
        hook = stack.enter_context(wl.receiver())
        wl.provide_default_model(data)
        db_path = data / "monitor.db"
        load_s, loaded_at = provide_database(db_path, rows, cache=not args.no_cache)
        started = time.perf_counter()
        db = Database(f"sqlite:///{db_path}")
        db.migrate()  # the tree's revisions after BASE_REVISION (and whatever data they derive)
        revision = db.schema_revision()
        db.dispose()
        upgrade_s = time.perf_counter() - started
        cfg = wl.config(data, feed_url=feeds.url, hook_url=hook.url, database_url=None, interval="60s")
        path = wl.write_config(data / "config.yaml", cfg)
        out = {"rows": rows, "load_s": load_s, "upgrade_s": upgrade_s, "revision": revision,
               "cache_age_min": (time.time() - loaded_at) / 60}
        out.update(incidents_list(path))  # first: the daemon opens incidents of its own
        out.update(run_daemon(path, db_path, rows, args))
    return out


# -- the database ----------------------------------------------------------------------------
def provide_database(path: Path, rows: int, *, cache: bool) -> tuple[float, float]:
    """A database at BASE_REVISION holding ``rows`` mentions at ``path``: (seconds to load, loaded at)."""
    cached = wl.CACHE / f"restart-{rows}-v{LOADER}.db"
    if cache and cached.exists() and time.time() - cached.stat().st_mtime < MAX_CACHE_AGE:
        shutil.copyfile(cached, path)
        return 0.0, cached.stat().st_mtime
    started = time.perf_counter()
    load(path, rows, datetime.now(timezone.utc))
    took = time.perf_counter() - started
    if cache:
        wl.CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(cached)
    return took, time.time()


def load(path: Path, rows: int, now: datetime, seed: int = 5) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from monitor.storage.database import MIGRATIONS

    engine = create_engine(f"sqlite:///{path}", future=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BASE_REVISION)
    engine.dispose()

    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mentions' "
                          "AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:  # built once at the end: much faster than row by row
        con.execute(f'DROP INDEX "{name}"')
    rng = random.Random(seed)
    makers = [wl.PostMaker(i, seed) for i in range(100)]
    start = now - SPAN
    step = SPAN.total_seconds() / max(rows, 1)
    roots: dict[int, int] = {}
    insert = ("INSERT INTO mentions (id, source, external_id, url, author, title, text, raw_text, parent_id, "
              "content_hash, published_at, fetched_at, sentiment_score, sentiment_label, model_version, topics, "
              "platform, author_followers, likes, reposts, comments, simhash, story_id, dup_kind, repost_count, "
              "crisis_words) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    batch = []
    for k in range(rows):
        i = k % 100
        author, text = makers[i].text()
        at = start + timedelta(seconds=k * step)
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
        repost = "//@" in text
        negative = rng.random() < 0.45
        ident = k + 1
        url = f"https://weibo.com/{5500000000 + i * 10_000_000 + k}/Ob{k:09d}"
        batch.append((ident, wl.source_name(i), url, url, author, text[:40], text, text, None, wl.content_hash(text),
                      stamp, stamp, round(rng.uniform(0.02, 0.35) if negative else rng.uniform(0.45, 0.98), 4),
                      "negative" if negative else "positive", "bench",
                      json.dumps([wl.BRANDS[i // len(wl.ASPECTS)]]), "weibo", None, None, None, None,
                      rng.getrandbits(64) - (1 << 63), roots.get(i) if repost else None,
                      "near" if repost and i in roots else None, 0,
                      '["\\u7ef4\\u6743"]' if negative and rng.random() < 0.02 else "[]"))
        if not repost:
            roots[i] = ident
        if len(batch) >= 50_000:
            con.executemany(insert, batch)
            batch.clear()
    con.executemany(insert, batch)
    for _, sql in indexes:
        con.execute(sql)
    last = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    con.executemany("INSERT INTO source_state (name, type, last_poll_at, last_success_at, consecutive_failures, "
                    "last_item_at, items_stored, first_poll_at) VALUES (?, 'rss', ?, ?, 0, ?, ?, ?)",
                    [(wl.source_name(i), last, last, last, rows // 100, start.strftime("%Y-%m-%d %H:%M:%S.%f"))
                     for i in range(100)])
    _incidents(con, rng, now)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _incidents(con: sqlite3.Connection, rng: random.Random, now: datetime) -> None:
    """INCIDENTS incidents over the 4 days, the last 20 still open (one per topic), each with a timeline."""
    for j in range(INCIDENTS):
        topic, rule = wl.BRANDS[j % 20], wl.RULES[j % len(wl.RULES)]
        opened = now - SPAN + timedelta(seconds=(j + rng.random()) * SPAN.total_seconds() / INCIDENTS)
        is_open = j >= INCIDENTS - 20
        ts = lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731
        acked, resolved = opened + timedelta(minutes=7), opened + timedelta(hours=2)
        cur = con.execute(
            "INSERT INTO incidents (group_key, topic, rule, rule_type, severity, status, title, reason, numbers, "
            "opened_at, updated_at, acked_at, acked_by, resolved_at, resolved_by, last_notified_at, last_signal_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"{topic}|{rule['name']}", topic, rule["name"], rule["type"], rng.choice(["IV", "IV", "III", "II"]),
             "open" if is_open else "resolved", f"「{topic}」{rule['name']}",
             f"过去 30 分钟负面 {rng.randint(20, 200)} 条，占比 {rng.randint(60, 95)}%",
             json.dumps({"current": rng.randint(20, 200), "baseline": round(rng.uniform(1, 10), 2)}),
             ts(opened), ts(opened if is_open else resolved), None if is_open else ts(acked),
             None if is_open else "小王", None if is_open else ts(resolved), None if is_open else "李经理",
             ts(opened), ts(opened)))
        events = [("opened", "system", "事件开启"), ("notified", "system", "已通知 值班机器人")]
        if not is_open:
            events += [("acknowledged", "小王", "确认处理"), ("note", "小王", "已联系门店核实"), ("resolved", "李经理", "已发声明")]
        con.executemany("INSERT INTO incident_events (incident_id, at, kind, actor, message, data) "
                        "VALUES (?, ?, ?, ?, ?, '{}')",
                        [(cur.lastrowid, ts(opened + timedelta(minutes=5 * n)), kind, actor, msg)
                         for n, (kind, actor, msg) in enumerate(events)])


# -- the daemon ---------------------------------------------------------------------------------
def run_daemon(config_path: Path, db_path: Path, rows: int, args) -> dict:
    marks: dict[str, float] = {}
    stored_lines = [0]
    tail: list[str] = []

    started = time.perf_counter()
    proc = subprocess.Popen(wl.daemon_command(config_path), cwd=TREE, env=wl.tree_env(TREE),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")

    def read_log() -> None:
        for line in proc.stdout:
            now = time.perf_counter() - started
            tail.append(line.rstrip())
            del tail[:-40]
            if "[stage=start]" in line:
                marks.setdefault("start_line", now)
            elif "[stage=rules] warmed up" in line:
                marks.setdefault("warmed_line", now)
            elif "stage=store]" in line and " new" in line:
                marks.setdefault("store_line", now)
                stored_lines[0] += 1

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    con = None
    peak_kb, killed = 0, None
    try:
        while True:
            elapsed = time.perf_counter() - started
            status = wl.proc_status(proc.pid)
            peak_kb = max(peak_kb, status.get("VmHWM", 0))
            if status.get("VmRSS", 0) > args.max_rss * 1024 * 1024:
                killed = f"RSS above {args.max_rss:g} GB after {elapsed:.0f}s"
                break
            if proc.poll() is not None:
                raise SystemExit(f"the daemon exited ({proc.returncode}) before its first poll:\n" + "\n".join(tail))
            if elapsed > args.timeout:
                killed = f"no poll stored within {args.timeout:g}s"
                break
            try:
                con = con or sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
                newest = con.execute("SELECT max(id) FROM mentions").fetchone()[0] or 0
            except sqlite3.Error:
                newest = 0
            if newest > rows and "first_poll" not in marks:
                marks["first_poll"] = elapsed
                marks["first_poll_cpu"] = wl.cpu_seconds(proc.pid)
            if "first_poll" in marks and (stored_lines[0] >= 100 or elapsed > marks["first_poll"] + 60):
                break
            time.sleep(0.05)
        if killed is None:
            time.sleep(1.0)  # what the first polls leave in memory (dedup index, rules) counts too
        polled = stored_lines[0]
        status = wl.proc_status(proc.pid)
        peak_kb = max(peak_kb, status.get("VmHWM", 0))
        kids = [wl.proc_status(k).get("VmHWM", 0) for k in wl.children(proc.pid)]
    finally:
        if con is not None:
            con.close()
        if killed:
            proc.kill()
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    return {"first_poll_s": marks.get("first_poll"), "first_poll_cpu_s": marks.get("first_poll_cpu"),
            "start_line_s": marks.get("start_line"),
            "warmed_line_s": marks.get("warmed_line"), "sources_stored": polled if killed is None else 0,
            "peak_mb": peak_kb / 1024, "children_peak_mb": max(kids, default=0) / 1024, "killed": killed}


def incidents_list(config_path: Path, repeat: int = 3) -> dict:
    """Median wall and CPU seconds of ``monitor incidents list`` (table, and ``--json``) and of ``python -c pass``."""
    env = wl.tree_env(TREE)

    def timed(cmd: list[str]) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(cmd, cwd=TREE, env=env, capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return statistics.median(walls), statistics.median(cpus)

    cmd = [sys.executable, "-m", "monitor", "incidents", "list", "--config", str(config_path)]
    listed = subprocess.run(cmd + ["--json"], cwd=TREE, env=env, capture_output=True, text=True)
    count = len(json.loads(listed.stdout)) if listed.returncode == 0 else None
    table, as_json, bare = timed(cmd), timed(cmd + ["--json"]), timed([sys.executable, "-c", "pass"])
    return {"incidents_list_s": table[0], "incidents_list_cpu_s": table[1], "incidents_json_s": as_json[0],
            "incidents_json_cpu_s": as_json[1], "python_pass_s": bare[0], "python_pass_cpu_s": bare[1],
            "incidents_listed": count}


# -- report --------------------------------------------------------------------------------------
def _fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def report(results: dict[int, dict]) -> None:
    sizes = list(results)
    head = "  " + f"{'stored mentions':<46}" + "".join(f"{n:>14,}" for n in sizes)
    row = lambda label, fn: "  " + f"{label:<46}" + "".join(f"{fn(results[n]):>14}" for n in sizes)  # noqa: E731
    print()
    print(head)
    print(row("first poll stored, s after spawning the daemon", lambda r: _num(r["first_poll_s"])
              if r["killed"] is None else "killed"))
    print(row("  daemon CPU seconds by then", lambda r: _num(r["first_poll_cpu_s"])))
    print(row("  '[stage=start]' logged, s", lambda r: _num(r["start_line_s"])))
    print(row("  '[stage=rules] warmed up' logged, s", lambda r: _num(r["warmed_line_s"])))
    print(row("peak RSS of the daemon, MB", lambda r: f"{r['peak_mb']:,.0f}" + ("+" if r["killed"] else "")))
    print(row("  polls stored before RSS was read", lambda r: r["sources_stored"]))
    print(row("monitor incidents list, wall s (median of 3)", lambda r: f"{r['incidents_list_s']:.2f}"))
    print(row("  CPU s", lambda r: f"{r['incidents_list_cpu_s']:.2f}"))
    print(row("  --json: wall s / CPU s", lambda r: f"{r['incidents_json_s']:.2f} / {r['incidents_json_cpu_s']:.2f}"))
    print(row("  baseline python -c pass: wall s / CPU s",
              lambda r: f"{r['python_pass_s']:.3f} / {r['python_pass_cpu_s']:.3f}"))
    print(row("  ratio to the bare interpreter (wall)", lambda r: f"{r['incidents_list_s'] / r['python_pass_s']:.1f}"))
    print(row("  incidents listed", lambda r: r["incidents_listed"]))
    print(row("bulk load, s (0 = from cache) / upgrade, s", lambda r: f"{r['load_s']:.0f} / {r['upgrade_s']:.1f}"))
    for n in sizes:
        if results[n]["killed"]:
            print(f"  {n:,} rows: daemon killed: {results[n]['killed']}")
    cmd = [".venv/bin/python", "tests/bench/bench_restart.py"] + sys.argv[1:]
    print(f"\n{wl.load_note()}; reproduce: {' '.join(cmd)}")
    print(json.dumps({"bench": "restart", "tree": wl.tree_label(TREE), "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
