"""The realistic workload through the real daemon: mentions/s end to end, SQL per poll, rules per poll.

The workload (tests/bench/workload.py): 100 RSSHub-style Weibo keyword feeds on a local server,
each poll bringing 20 new posts (and repeating the previous 10), 20 topics, every rule type
(negative_spike, negative_share, keyword, frequency, influencer; source_health by default), one
webhook channel pointing at a local receiver. Measured, in one run:

* **daemon** — ``monitor run --config …`` as a subprocess, sources polled every ``--interval``
  (more than the daemon can take, so the figure is its capacity); stored mentions/s counted in
  the database over ``--seconds`` after ``--warmup``; on SQLite and, when reachable, PostgreSQL.
* **baseline** — the default sentiment scorer alone on the same texts, one process: the ratio
  says what share of the scorer's rate survives the rest of the path.
* **SQL statements per poll** — ``Pipeline.poll`` in this process with a ``before_cursor_execute``
  listener on the engine (steady state: every source's second and later polls).
* **rules per poll** — a ``RuleEngine`` holding 1k / 100k / 300k mentions in the last 30 minutes
  (spread over the 20 topics) times a 20-mention ``add_data`` (and a ``tick``), in CPU time.

The machine may be shared: the daemon's CPU use and the other processes' are printed, and every
rate is also given per CPU second (the daemon's; the scorer's), which the others' load barely moves.

Run: ``.venv/bin/python tests/bench/bench_workload.py`` (``make bench``; ~3 min). Options:
``--tree DIR`` measures another checkout (e.g. ``git worktree add /tmp/before <commit>``) with
this benchmark; ``--database-url URL`` (PostgreSQL: a private schema is created and dropped);
``--no-postgres``; ``--seconds/--warmup/--interval``; ``--rules-sizes 1000,100000,300000,1000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload as wl  # noqa: E402

TREE = wl.select_tree(sys.argv)
SKIPPED = "maximum number of running instances"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(TREE), help="the checkout to measure (default: this one)")
    ap.add_argument("--database-url", action="append", default=None,
                    help="measure on this database (repeatable; default: SQLite, plus PostgreSQL when reachable)")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--sources", type=int, default=100)
    ap.add_argument("--new", type=int, default=20, help="new posts per poll and source")
    ap.add_argument("--interval", default="500ms", help="poll interval of every source (offered load)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after the first stored mention")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds of daemon throughput")
    ap.add_argument("--rules-sizes", default="1000,100000,300000")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: daemon, sql, rules")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    urls = args.database_url or ["sqlite"] + ([] if args.no_postgres or not wl.postgres_url() else
                                              [wl.postgres_url()])
    cfg_args = dict(sources=args.sources, interval=args.interval)

    print(f"workload: {args.sources} RSSHub Weibo keyword feeds on 127.0.0.1, {args.new} new posts per poll "
          f"(+10 repeated), polled every {args.interval}; {len(wl.BRANDS)} topics; "
          f"rules {', '.join(r['type'] for r in wl.RULES)} "
          "+ source_health; 1 webhook channel")
    print(f"tree: {wl.tree_label(TREE)}", flush=True)
    result: dict = {"tree": wl.tree_label(TREE), "interval": args.interval, "sources": args.sources}
    first = scorer_baseline()
    result["scorer_docs_per_s"], result["scorer_docs_per_cpu_s"] = first
    print(f"  baseline: scorer only (default model, one process, same texts) {first[0]:,.0f} docs/s", flush=True)
    names = []
    for url in urls:
        name = "sqlite" if url == "sqlite" else wl.simple_url(url)
        names.append(name)
        with (wl.postgres_schema(url) if url != "sqlite" else nullcontext(None)) as db_url:
            if "daemon" not in skip:
                result[f"daemon_{name}"] = run_daemon(db_url, args.new, args.warmup, args.seconds, cfg_args)
                print(f"  daemon on {name}: {result[f'daemon_{name}']['mentions_per_s']:,.0f} mentions/s", flush=True)
        with (wl.postgres_schema(url) if url != "sqlite" else nullcontext(None)) as db_url:
            if "sql" not in skip:
                result[f"sql_{name}"] = sql_per_poll(db_url, args.new)
    if "daemon" not in skip:  # the machine's load drifts: the baseline is the mean of before and after
        again = scorer_baseline()
        result["scorer_docs_per_s_runs"] = [first[0], again[0]]
        result["scorer_docs_per_s"] = (first[0] + again[0]) / 2
        result["scorer_docs_per_cpu_s"] = (first[1] + again[1]) / 2
    if "rules" not in skip:
        result["rules"] = rules_per_poll([int(x) for x in args.rules_sizes.split(",")], args.new)
    report(result, names, args)
    return 0


# -- baseline -----------------------------------------------------------------------------
def scorer_baseline(count: int = 4000, min_seconds: float = 2.0) -> tuple[float, float]:
    """Docs per second (wall) and per CPU second of the default scorer on the workload's texts."""
    from monitor.app.config import parse_config
    from nlp.sentiment import scorer_from_config

    texts = wl.scorer_texts(count)
    with tempfile.TemporaryDirectory() as tmp:
        wl.provide_default_model(Path(tmp))
        scorer = scorer_from_config(parse_config(json.dumps({"data_dir": tmp})))
        scorer.score("预热分词词典")  # jieba loads its dictionary once per process
        passes, started, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < min_seconds:
            for t in texts:
                scorer.score(t)
            passes += 1
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        getattr(scorer, "close", lambda: None)()
    return passes * len(texts) / wall, passes * len(texts) / cpu


# -- the daemon ---------------------------------------------------------------------------
def run_daemon(db_url: str | None, new: int, warmup: float, seconds: float, cfg_args: dict) -> dict:
    from sqlalchemy import create_engine, text

    with ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(wl.FeedServer(cfg_args["sources"], new))
        hook = stack.enter_context(wl.receiver())
        wl.provide_default_model(data)
        cfg = wl.config(data, feed_url=feeds.url, hook_url=hook.url, database_url=db_url, **cfg_args)
        path = wl.write_config(data / "config.yaml", cfg)
        log_path = data / "daemon.log"
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(wl.daemon_command(path), cwd=TREE, env=wl.tree_env(TREE), stdout=log,
                                    stderr=subprocess.STDOUT)
        engine = create_engine(cfg["storage"]["url"], future=True)

        def stored() -> int:
            try:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM mentions")).scalar_one()
            except Exception:  # noqa: BLE001 - the table is not there before the daemon migrates
                return 0

        try:
            while stored() == 0:
                if proc.poll() is not None or time.perf_counter() - started > 180:
                    raise SystemExit(f"daemon did not store anything; log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            first_s = time.perf_counter() - started
            time.sleep(warmup)
            samples = []  # (t, stored, daemon cpu s, bench cpu s, machine cpu s)
            end = time.perf_counter() + seconds
            while True:
                now = time.perf_counter()
                samples.append((now, stored(), wl.cpu_seconds(proc.pid), _own_cpu(), wl.busy_seconds()))
                if now >= end:
                    break
                time.sleep(min(2.5, max(0.0, end - now)))
            rss = wl.proc_status(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with engine.connect() as conn:
            polled = conn.execute(text("SELECT count(DISTINCT source) FROM mentions")).scalar_one()
        engine.dispose()
        lines = log_path.read_text(errors="replace").splitlines()
    (t0, c0, d0, b0, m0), (t1, c1, d1, b1, m1) = samples[0], samples[-1]
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[1:]) if b[0] > a[0]]
    run_s = t1 - started
    return {
        "mentions_per_s": (c1 - c0) / (t1 - t0), "window_min": min(windows), "window_max": max(windows),
        "daemon_cores": (d1 - d0) / (t1 - t0), "bench_cores": (b1 - b0) / (t1 - t0),
        "other_cores": max(0.0, ((m1 - m0) - (d1 - d0) - (b1 - b0)) / (t1 - t0)),
        "first_stored_s": first_s, "sources_polled": polled, "pages": len(hook.requests),
        "skipped_per_min": sum(SKIPPED in line for line in lines) / (run_s / 60),
        "errors": sum(" ERROR " in line for line in lines),
        "first_error": next((line[:300] for line in lines if " ERROR " in line), None),
        "rss_mb": rss.get("VmHWM", 0) / 1024,
        "offered_per_s": cfg_args["sources"] * new / _seconds(cfg_args["interval"]),
    }


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _seconds(duration: str) -> float:
    from monitor.core.configtypes import parse_duration

    return parse_duration(duration).total_seconds()


# -- SQL statements per poll (in-process) ----------------------------------------------------
def sql_per_poll(db_url: str | None, new: int, sources: int = 20, rounds: int = 4) -> dict:
    """Statements each ``Pipeline.poll`` issues: first poll of a source, and later polls (steady state)."""
    from sqlalchemy import event

    from monitor.app.config import parse_config
    from monitor.app.pipeline import Pipeline
    from monitor.storage import Database

    with ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(wl.FeedServer(sources, new))
        hook = stack.enter_context(wl.receiver())
        wl.provide_default_model(data)
        cfg = wl.config(data, feed_url=feeds.url, hook_url=hook.url, database_url=db_url, sources=sources)
        config = parse_config(json.dumps(cfg))
        db = Database(cfg["storage"]["url"])
        db.migrate()
        pipeline = Pipeline(config, db)
        pipeline.scorer.score("预热分词词典")
        count = [0]
        event.listen(db.engine, "before_cursor_execute", lambda *a: count.__setitem__(0, count[0] + 1))
        first, later, stored, later_cpu = [], [], 0, 0.0
        for r in range(rounds):
            for i in range(sources):
                before, cpu = count[0], time.process_time()
                report = pipeline.poll(wl.source_name(i))
                assert report.error is None, report.error
                (first if r == 0 else later).append(count[0] - before)
                if r:
                    later_cpu += time.process_time() - cpu  # this process: the feed server's share is small
                    stored += report.stored
        pipeline.close()
        db.dispose()
    return {"first_poll": statistics.mean(first), "per_poll": statistics.mean(later),
            "per_poll_max": max(later), "stored_per_poll": stored / len(later),
            "one_thread_per_cpu_s": stored / later_cpu}


# -- rules per poll -------------------------------------------------------------------------
def rules_per_poll(sizes: list[int], new: int, reps: int = 30) -> dict:
    from monitor.app.config import parse_config
    from alerts.engine import RuleEngine

    config = parse_config(json.dumps(wl.config(Path(tempfile.gettempdir()), feed_url="http://127.0.0.1:9",
                                               hook_url="http://127.0.0.1:9", database_url="sqlite://")))
    topics = [t.name for t in config.topics]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    out = {}
    for n in sizes:  # timed in CPU seconds of this process: the machine's other load does not count
        engine = RuleEngine(config.rules, topics, started_at=now - timedelta(days=2),
                            sources=[s for s in config.sources if s.enabled])
        history = _mentions(n, now - timedelta(minutes=30), now, seed=n)
        for k in range(0, n, 10_000):
            chunk = history[k:k + 10_000]
            engine.add_data(chunk, chunk[-1].published_at)
        del history
        add, tick = [], []
        for k in range(reps + 1):
            at = now + timedelta(seconds=k + 1)
            batch = _mentions(new, at - timedelta(seconds=20), at, seed=k, prefix=f"poll{k}-")
            started = time.process_time()  # CPU time: other processes on the machine do not count
            engine.add_data(batch, at)
            add.append(time.process_time() - started)
            if k % 6 == 0:
                started = time.process_time()
                engine.tick(at)
                tick.append(time.process_time() - started)
        out[n] = {"add_ms": 1000 * statistics.median(add[1:]), "tick_ms": 1000 * statistics.median(tick)}
        del engine
    return out


def _mentions(n: int, start: datetime, end: datetime, *, seed: int, prefix: str = "") -> list:
    """``n`` scored mentions over (start, end], in time order, spread over the 20 topics (~45% negative)."""
    from monitor.core.domain import Mention

    rng = random.Random(seed)
    texts = wl.scorer_texts(400, seed=seed % 7 + 1)
    span = (end - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(n))
    out = []
    for k, off in enumerate(offsets):
        at = start + timedelta(seconds=off)
        negative = rng.random() < 0.45
        text = texts[k % len(texts)]
        out.append(Mention(
            source=wl.source_name(k % 100), external_id=f"{prefix}{seed}-{k}", text=text, raw_text=text,
            published_at=at, fetched_at=at, content_hash=f"{prefix}{seed}-{k}", author=f"用户{k % 5000}",
            score=0.1 if negative else 0.8, label="negative" if negative else "positive", model_version="bench",
            topics=(wl.BRANDS[k % len(wl.BRANDS)],), id=k + 1, platform="weibo",
            crisis_words=("维权",) if negative and rng.random() < 0.03 else (),
            author_followers=150_000 if rng.random() < 0.002 else rng.randrange(10, 5000)))
    return out


# -- report ---------------------------------------------------------------------------------
def report(r: dict, names: list[str], args) -> None:
    base = r["scorer_docs_per_s"]
    col = lambda label, fn, key: "  " + f"{label:<42}" + "".join(  # noqa: E731
        f"{(fn(r[f'{key}_{n}']) if f'{key}_{n}' in r else '—'):>14}" for n in names)
    print()
    print("  " + f"{'':<42}" + "".join(f"{n:>14}" for n in names))
    runs = " (mean of " + " and ".join(f"{x:,.0f}" for x in r["scorer_docs_per_s_runs"]) + ", before and after)" \
        if "scorer_docs_per_s_runs" in r else ""
    print(f"  {'baseline: scorer only, docs/s':<42}{base:>14,.0f}{runs}")
    print(f"  {'  docs per CPU second':<42}{r['scorer_docs_per_cpu_s']:>14,.0f}")
    if any(f"daemon_{n}" in r for n in names):
        d = "daemon"
        print(col("daemon: stored mentions/s", lambda x: f"{x['mentions_per_s']:,.0f}", d))
        print(col("  ratio to scorer-only", lambda x: f"{x['mentions_per_s'] / base:.3f}", d))
        print(col("  2.5-s windows, min–max", lambda x: f"{x['window_min']:,.0f}–{x['window_max']:,.0f}", d))
        print(col("  offered by the feeds, mentions/s", lambda x: f"{x['offered_per_s']:,.0f}", d))
        print(col("  daemon CPU, cores", lambda x: f"{x['daemon_cores']:.2f}", d))
        print(col("  mentions per daemon CPU second",
                  lambda x: f"{x['mentions_per_s'] / max(x['daemon_cores'], 1e-9):,.0f}", d))
        print(col("    ratio to scorer-only docs per CPU second",
                  lambda x: f"{x['mentions_per_s'] / max(x['daemon_cores'], 1e-9) / r['scorer_docs_per_cpu_s']:.3f}", d))
        print(col("  feed server + receiver CPU, cores", lambda x: f"{x['bench_cores']:.2f}", d))
        print(col("  other processes' CPU, cores (noise)", lambda x: f"{x['other_cores']:.2f}", d))
        print(col("  first mention stored after start, s", lambda x: f"{x['first_stored_s']:.1f}", d))
        print(col("  'skipped: max instances' per min", lambda x: f"{x['skipped_per_min']:,.0f}", d))
        print(col("  sources that stored / pages / errors",
                  lambda x: f"{x['sources_polled']}/{x['pages']}/{x['errors']}", d))
        print(col("  daemon peak RSS, MB", lambda x: f"{x['rss_mb']:,.0f}", d))
    if any(f"sql_{n}" in r for n in names):
        print(col("SQL statements per poll (steady)", lambda x: f"{x['per_poll']:.1f}", "sql"))
        print(col("  max / first poll of a source", lambda x: f"{x['per_poll_max']} / {x['first_poll']:.0f}", "sql"))
        print(col("  in-process polls, mentions per CPU second", lambda x: f"{x['one_thread_per_cpu_s']:,.0f}", "sql"))
    if "rules" in r:
        sizes = list(r["rules"])
        print(f"  {'rules per 20-mention poll, ms':<42}" + "".join(f"{_k(n) + ' held':>14}" for n in sizes))
        print(f"  {'  RuleEngine.add_data':<42}" + "".join(f"{r['rules'][n]['add_ms']:>14.2f}" for n in sizes))
        print(f"  {'  RuleEngine.tick':<42}" + "".join(f"{r['rules'][n]['tick_ms']:>14.2f}" for n in sizes))
        print(f"  {'  add_data ratio, largest / smallest':<42}"
              f"{r['rules'][sizes[-1]]['add_ms'] / r['rules'][sizes[0]]['add_ms']:>14.1f}")
    cmd = [".venv/bin/python", "tests/bench/bench_workload.py"] + (sys.argv[1:] if len(sys.argv) > 1 else [])
    print(f"\n{wl.load_note()}; reproduce: {' '.join(cmd)}")
    print(json.dumps({"bench": "workload", **{k: v for k, v in r.items()}}, ensure_ascii=False, default=str))


def _k(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


if __name__ == "__main__":
    sys.exit(main())
