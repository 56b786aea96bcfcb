"""Cluster mode (issue 14): polls on time with 1-3 nodes, throughput per node, failover gap after kill -9.

Every node is a real ``monitor run --config …`` process (cluster enabled) on one PostgreSQL database
(a private schema per measurement, dropped afterwards); the feeds come from one threaded HTTP server
in this process, which notes the time of every request. Three measurements:

* **lag** — ``--sources`` RSS feeds (one fixed item each: after the first poll a poll stores
  nothing, so the figure is the scheduling, not the scoring) polled every ``--interval`` by 1, 2 and
  3 nodes. A node claims a poll by moving ``source_state.next_poll_at`` one interval past the due
  time it answered, so *lag = poll_claimed_at − the next_poll_at it answered*: this process samples ``source_state``
  every 0.25 s and pairs each new claim with the due time seen before it. Counted: the polls due
  within ``--periods`` intervals after every source was polled once (the first, all-at-once round is
  warm-up). Cross-check from the feed server: gap between two requests of one feed − interval.
  The dispatcher runs at whole ``dispatch_every`` ticks, so a poll waits up to one tick after it is
  due (the next one is still due an interval after this one's due time: the lag does not add up).
* **throughput** — the workload of bench_workload.py (100 RSSHub feeds, 20 new posts per poll, every
  500 ms: more than the daemons can take), stored mentions/s over ``--seconds`` after ``--warmup``:
  one single daemon (cluster off, same PostgreSQL) as the baseline, then 1, 2 and 3 cluster nodes.
* **failover** — ``--failover-sources`` feeds every ``--failover-interval`` answering after
  ``--feed-delay`` (so some polls are in flight when a node dies), ``--failover-nodes`` nodes; the
  node leading the rules is killed with SIGKILL while polls are in flight (in steady state: every
  feed polled within the last interval + 3 s); the gap is the longest time between two requests of
  one feed across the kill (feeds the killed node polled last, those it had in flight, those whose
  procrastinate job it held, and all feeds), and the time until the ``rules`` lease
  (``cluster_leases``) names another node; then the node is started again. ``--runs`` kills,
  median and max.

The machine has few cores (``nproc``) and the feed server and the sampler run in this process: their
CPU share is printed next to the nodes'. Run: ``.venv/bin/python tests/bench/bench_cluster.py``
(``make bench``; ~10 min; ``--quick`` ~6 min). ``--skip lag,throughput,failover``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import workload as wl  # noqa: E402
from tests.faults.proc import DaemonProcess, descendants  # noqa: E402
from tests.servers import LocalServer, Response  # noqa: E402

JOINED = "joined the cluster"
LOGS = wl.CACHE / "cluster-logs"
# poll jobs a worker that stopped beating (1 s heartbeat) left running: taken, maybe not claimed yet
HELD_SQL = ("SELECT j.args->>'source' FROM procrastinate_jobs j JOIN procrastinate_workers w ON w.id = j.worker_id "
            "WHERE j.status = 'doing' AND j.task_name = 'poll' AND w.last_heartbeat < now() - interval '2 seconds'")
CLUSTER = {"enabled": True, "dispatch_every": "1s", "heartbeat": "1s", "dead_after": "5s"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None, help="PostgreSQL server (default: $MONITOR_TEST_DATABASE_URL "
                                                         "or 127.0.0.1:5432/test)")
    ap.add_argument("--quick", action="store_true", help="300 sources every 10 s, 10 s of throughput, 3 kills (~6 min)")
    ap.add_argument("--nodes", default="1,2,3", help="node counts for lag and throughput")
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between polls of a source (lag)")
    ap.add_argument("--periods", type=float, default=2.0, help="intervals measured after the warm-up round")
    ap.add_argument("--warmup", type=float, default=10.0, help="throughput: seconds after the first stored mention")
    ap.add_argument("--seconds", type=float, default=20.0, help="throughput: measured seconds")
    ap.add_argument("--failover-nodes", type=int, default=3)
    ap.add_argument("--failover-sources", type=int, default=50)
    ap.add_argument("--failover-interval", type=float, default=5.0)
    ap.add_argument("--feed-delay", type=float, default=1.0, help="failover: seconds each feed takes to answer")
    ap.add_argument("--runs", type=int, default=5, help="failover: kills")
    ap.add_argument("--max-per-host", type=int, default=32, help="lag and failover feeds: requests at once to the "
                    "feed server, over the whole cluster")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: lag, throughput, failover")
    args = ap.parse_args(argv)
    if args.quick:
        args.sources, args.interval, args.warmup, args.seconds, args.runs = 300, 10.0, 5.0, 10.0, 3
    skip = set(filter(None, args.skip.split(",")))
    url = wl.postgres_url(args.database_url)
    if url is None:
        print("cluster bench: no PostgreSQL at 127.0.0.1:5432 (or $MONITOR_TEST_DATABASE_URL); skipped")
        return 0
    counts = [int(n) for n in args.nodes.split(",")]
    print(f"cluster: nodes on {wl.simple_url(url)}, dispatch_every/heartbeat 1s, dead_after 5s; {wl.load_note()}",
          flush=True)
    result: dict = {"args": {k: v for k, v in vars(args).items() if k != "database_url"}}
    if "lag" not in skip:
        result["lag"] = {n: measure_lag(url, n, args) for n in counts}
    if "throughput" not in skip:
        result["throughput"] = {"single": measure_throughput(url, 0, args)}
        result["throughput"].update({n: measure_throughput(url, n, args) for n in counts})
    if "failover" not in skip:
        result["failover"] = measure_failover(url, args)
    report(result, args)
    return 0


# -- pieces ------------------------------------------------------------------------------------
class Feeds:
    """``/feed/<i>``: one fixed RSS item each (or ``new`` unseen ones); every request's time noted."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.hits: list[tuple[float, int]] = []  # (unix time the request arrived, feed index)
        self.server = LocalServer(self._handle)
        self.server.requests = wl._Discard()

    def _handle(self, req):
        if not req.path.startswith("/feed/"):
            return Response(404, b"")
        i = int(req.path.rsplit("/", 1)[1])
        self.hits.append((time.time(), i))  # list.append is atomic: no lock in the hot path
        body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>feed {i}</title><item><guid>f{i}</guid>'
                f"<title>鲜丰奶茶 {i}</title><description>鲜丰奶茶很好喝 {i}</description></item></channel></rss>")
        return Response(200, body.encode(), {"Content-Type": "application/rss+xml"}, delay=self.delay)

    def steady(self, count: int, within: float) -> bool:
        """Every feed requested within the last ``within`` seconds."""
        since = time.time() - within
        return len({i for at, i in self.hits[-4 * count:] if at >= since}) == count

    def times(self) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for at, i in list(self.hits):
            out.setdefault(i, []).append(at)
        return {i: sorted(ts) for i, ts in out.items()}

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> "Feeds":
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)


def feed_config(data: Path, db_url: str, feed_url: str, sources: int, interval: float, per_host: int) -> dict:
    return {
        "data_dir": str(data), "storage": {"url": db_url}, "cluster": CLUSTER,
        # every feed is on one local server, and a host's limit holds for the whole cluster (host_slots):
        # high enough not to be the bottleneck (--max-per-host)
        "sources": [{"name": f"s{i:04d}", "type": "rss", "url": f"{feed_url}/feed/{i}", "interval": f"{interval}s",
                     "max_per_host": per_host} for i in range(sources)],
        "topics": [{"name": "鲜丰奶茶", "keywords": ["鲜丰"]}],
        "rules": [{"name": "塌房", "type": "keyword", "terms": {"塌房": "II"}}],
        "scheduler": {"shutdown_grace": "5s"},
    }


class Db:
    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url, future=True, pool_size=2)

    def rows(self, sql: str) -> list:
        from sqlalchemy import text

        try:
            with self.engine.connect() as conn:
                return list(conn.execute(text(sql)).all())
        except Exception:  # noqa: BLE001 - the tables appear when the first node migrates
            return []

    def scalar(self, sql: str, default=0):
        rows = self.rows(sql)
        return rows[0][0] if rows and rows[0][0] is not None else default


def epoch(dt) -> float:
    return dt.replace(tzinfo=timezone.utc).timestamp()


class Claims(threading.Thread):
    """Samples ``source_state`` every ``every`` s: each claim of a poll, with the due time it answered."""

    def __init__(self, db: Db, every: float = 0.25):
        super().__init__(daemon=True)
        self.db, self.every = db, every
        self.last: dict[str, tuple] = {}  # name -> (next_poll_at, poll_claimed_at, polled_by)
        self.claims: list[tuple[str, float, float, str]] = []  # (source, due, claimed, node)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            for name, due, claimed, node in self.db.rows(
                    "SELECT name, next_poll_at, poll_claimed_at, polled_by FROM source_state"):
                before = self.last.get(name)
                if before is not None and claimed != before[1] and before[0] is not None:
                    self.claims.append((name, epoch(before[0]), epoch(claimed), node))
                self.last[name] = (due, claimed, node)


def start_nodes(config: Path, data: Path, count: int, stack: ExitStack) -> list[DaemonProcess]:
    """The first node alone (it creates the schema), then the others together."""
    nodes = [DaemonProcess(config, data / f"node{k}.log") for k in range(count)]
    for k, node in enumerate(nodes):
        node.start()
        stack.callback(node.ensure_stopped)
        if k == 0:
            node.wait_for(JOINED, 120)
    for node in nodes:
        node.wait_for(JOINED, 120)
    return nodes


def stop_nodes(nodes: list[DaemonProcess]) -> None:
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.terminate()
    for node in nodes:
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:
            node.ensure_stopped()


def cpu(pids: list[int]) -> float:
    """CPU seconds of processes and their children (scoring workers) so far."""
    return sum(wl.cpu_seconds(p) for pid in pids for p in [pid, *descendants(pid)])


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def postgres_cpu() -> float:
    """CPU seconds of the local PostgreSQL server's processes (every client's, not only the nodes')."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() in ("postgres", "postmaster"):
                pids.append(int(entry))
        except OSError:
            pass
    return sum(wl.cpu_seconds(p) for p in pids)


def errors(nodes: list[DaemonProcess], label: str) -> dict:
    """The nodes' ERROR lines: how many, the first; their logs are kept (in LOGS/label) when there are any."""
    found = [line[:300] for n in nodes for line in n.log.read_text(errors="replace").splitlines()
             if " ERROR " in line or "Traceback" in line]
    keep = None
    if found:
        keep = LOGS / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
        keep.mkdir(parents=True, exist_ok=True)
        for n in nodes:
            shutil.copyfile(n.log, keep / n.log.name)
    return {"errors": len(found), "first_error": found[0] if found else None, "logs": str(keep) if keep else None}


# -- 1. lag ------------------------------------------------------------------------------------
def measure_lag(base_url: str, count: int, args) -> dict:
    with ExitStack() as stack:
        db_url = stack.enter_context(wl.postgres_schema(base_url))
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(Feeds())
        wl.provide_default_model(data)
        cfg = wl.write_config(data / "monitor.yaml", feed_config(data, db_url, feeds.url, args.sources, args.interval,
                                                                     args.max_per_host))
        db = Db(db_url)
        claims = Claims(db)
        claims.start()
        stack.callback(claims.stop.set)
        started = time.time()
        nodes = start_nodes(cfg, data, count, stack)
        while db.scalar("SELECT count(*) FROM source_state WHERE poll_claimed_at IS NOT NULL") < args.sources:
            if time.time() - started > 300:
                raise SystemExit(f"{count} node(s): not every source polled once in 300 s: {errors(nodes, 'lag')}")
            time.sleep(0.5)
        first_round = time.time() - started
        t0 = time.time()
        t1 = t0 + args.periods * args.interval
        pids = [n.pid for n in nodes]
        c0, b0, g0, m0 = cpu(pids), own_cpu(), postgres_cpu(), wl.busy_seconds()
        time.sleep(max(0.0, t1 - time.time()))
        c1, b1, g1, m1 = cpu(pids), own_cpu(), postgres_cpu(), wl.busy_seconds()
        # polls due before t1 get a grace to happen; those still unclaimed are counted as late
        deadline = time.time() + max(10.0, args.interval / 2)
        while time.time() < deadline and db.scalar(
                f"SELECT count(*) FROM source_state WHERE next_poll_at < to_timestamp({t1}) AT TIME ZONE 'UTC'"):
            time.sleep(0.5)
        overdue = db.rows(f"SELECT name, next_poll_at FROM source_state "
                          f"WHERE next_poll_at < to_timestamp({t1}) AT TIME ZONE 'UTC'")
        now = time.time()
        stop_nodes(nodes)
        claims.stop.set()
        claims.join(5)
        errs = errors(nodes, f"lag-{count}")
        db.engine.dispose()
    window = [(s, due, at, node) for s, due, at, node in claims.claims if t0 <= due < t1]
    lags = [at - due for _, due, at, _ in window] + [now - epoch(due) for _, due in overdue]
    per_node: dict[str, int] = {}
    for *_, node in window:
        per_node[node] = per_node.get(node, 0) + 1
    gaps = []
    for ts in feeds.times().values():
        gaps += [b - a - args.interval for a, b in zip(ts, ts[1:]) if t0 <= a + args.interval < t1]
    polled = {s for s, *_ in window}
    return {"nodes": count, "first_round_s": first_round, "polls": len(window), "overdue": len(overdue),
            "sources_without_poll": args.sources - len(polled),
            "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99), "lag_max": max(lags, default=None),
            "gap_p50": pct(gaps, 50), "gap_p99": pct(gaps, 99),
            "double_polls": sum(g < -args.interval / 2 for g in gaps),
            "polls_per_node": sorted(per_node.values(), reverse=True) + [0] * (count - len(per_node)),
            "node_cores": (c1 - c0) / (t1 - t0), "bench_cores": (b1 - b0) / (t1 - t0),
            "postgres_cores": (g1 - g0) / (t1 - t0), "machine_cores": (m1 - m0) / (t1 - t0), **errs}


# -- 2. throughput -------------------------------------------------------------------------------
def measure_throughput(base_url: str, count: int, args) -> dict:
    """``count`` cluster nodes, or 0: one single daemon (cluster off) on the same PostgreSQL."""
    with ExitStack() as stack:
        db_url = stack.enter_context(wl.postgres_schema(base_url))
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(wl.FeedServer(100, 20))
        hook = stack.enter_context(wl.receiver())
        wl.provide_default_model(data)
        cfg = wl.config(data, feed_url=feeds.url, hook_url=hook.url, database_url=db_url, interval="500ms")
        if count:
            cfg["cluster"] = CLUSTER
        path = wl.write_config(data / "monitor.yaml", cfg)
        db = Db(db_url)
        if count:
            nodes = start_nodes(path, data, count, stack)
        else:
            nodes = [DaemonProcess(path, data / "single.log").start()]
            stack.callback(nodes[0].ensure_stopped)
        started = time.time()
        while db.scalar("SELECT count(*) FROM mentions") == 0:
            if time.time() - started > 180 or any(n.proc.poll() is not None for n in nodes):
                raise SystemExit("nothing stored:\n" + "\n".join(n.output()[-2000:] for n in nodes))
            time.sleep(0.2)
        time.sleep(args.warmup)
        pids = [n.pid for n in nodes]

        def sample():
            polls = dict(db.rows("SELECT name, (info->>'polls')::int FROM cluster_nodes")) if count else {}
            return (time.time(), db.scalar("SELECT count(*) FROM mentions"), cpu(pids), own_cpu(), postgres_cpu(),
                    wl.busy_seconds(), polls)

        t0, n0, c0, b0, g0, m0, p0 = sample()
        time.sleep(args.seconds)
        t1, n1, c1, b1, g1, m1, p1 = sample()
        stop_nodes(nodes)
        errs = errors(nodes, f"throughput-{count}")
        db.engine.dispose()
    rate = (n1 - n0) / (t1 - t0)
    return {"nodes": count, "mentions_per_s": rate, "per_node": rate / max(1, count),
            "per_cpu_s": (n1 - n0) / max(1e-9, c1 - c0), "node_cores": (c1 - c0) / (t1 - t0),
            "bench_cores": (b1 - b0) / (t1 - t0), "postgres_cores": (g1 - g0) / (t1 - t0),
            "machine_cores": (m1 - m0) / (t1 - t0), "polls_per_node": sorted((p1.get(k, 0) - p0.get(k, 0) for k in p1), reverse=True), **errs}


# -- 3. failover -------------------------------------------------------------------------------
def measure_failover(base_url: str, args) -> dict:
    interval, dead_after = args.failover_interval, 5.0
    leader_sql = "SELECT node_name FROM cluster_leases WHERE name = 'rules'"
    with ExitStack() as stack:
        db_url = stack.enter_context(wl.postgres_schema(base_url))
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        feeds = stack.enter_context(Feeds(delay=args.feed_delay))
        wl.provide_default_model(data)
        cfg = wl.write_config(data / "monitor.yaml",
                              feed_config(data, db_url, feeds.url, args.failover_sources, interval, args.max_per_host))
        db = Db(db_url)
        nodes = start_nodes(cfg, data, args.failover_nodes, stack)
        started = list(nodes)
        runs = []
        for run in range(args.runs):
            # steady state before a kill (the node started last has its share, every feed polled lately),
            # so that a gap belongs to this kill and not to the previous one; at most a minute
            settle_from = time.time()
            while time.time() < settle_from + 60 and (time.time() < settle_from + 2 * interval
                                                     or not db.scalar(leader_sql, None) or not feeds.steady(args.failover_sources, interval + 3)):
                time.sleep(0.2)
            settled = feeds.steady(args.failover_sources, interval + 3)
            leader = db.scalar(leader_sql, None)
            victim = next(n for n in nodes if leader.endswith(f":{n.pid}"))
            # polls come in bursts (every source is due at a dispatch tick): kill in one, polls in flight
            burst_until = time.time() + 2 * interval
            while time.time() < burst_until and sum(at > time.time() - 0.3 for at, _ in feeds.hits[-20:]) < 3:
                time.sleep(0.01)
            t_kill = time.time()
            victim.kill9()
            # read at once after the kill: the sources it claimed last (another node claims them within an interval)
            mine = {int(name[1:]) for name, in db.rows(f"SELECT name FROM source_state WHERE polled_by = '{leader}'")}
            moved = forgotten = held = None
            while time.time() < t_kill + 30 and (moved is None or forgotten is None or held is None):
                if held is None and time.time() > t_kill + 2.5:  # the dead worker's heartbeat is stale by now
                    held = {int(name[1:]) for name, in db.rows(HELD_SQL)}
                holder = db.scalar(leader_sql, None)
                if moved is None and holder is not None and holder != leader:
                    moved = time.time() - t_kill
                if forgotten is None and not db.scalar(f"SELECT count(*) FROM cluster_nodes WHERE name = '{leader}'"):
                    forgotten = time.time() - t_kill
                time.sleep(0.05)
            time.sleep(max(0.0, t_kill + dead_after + 2 * interval + 2 - time.time()))  # the handed-back polls ran
            gaps, around, in_flight, unpolled = {}, {}, set(), []
            for i, ts in ((i, feeds.times().get(i, [])) for i in range(args.failover_sources)):
                before, after = [t for t in ts if t <= t_kill], [t for t in ts if t > t_kill]
                if not before or not after:
                    unpolled.append(i)
                    continue
                if i in mine and before[-1] > t_kill - args.feed_delay:
                    in_flight.add(i)  # the killed node's request, not answered yet when it died
                seq = [before[-1]] + after  # the longest wait across the kill
                gaps[i] = max(y - x for x, y in zip(seq, seq[1:]))
                around[i] = [round(before[-1] - t_kill, 2), round(after[0] - t_kill, 2)]
            held = held or set()
            runs.append({"killed": leader, "settled": settled, "sources_of_killed": len(mine), "in_flight": len(in_flight),
                         "jobs_held": len(held), "held_unclaimed": len(held - mine),
                         "gap_held_s": max((gaps[i] for i in held if i in gaps), default=None),
                         # last request before the kill and first after, s from the kill: held jobs' sources
                         "held_requests": {f"s{i:04d}": around.get(i) for i in sorted(held)},
                         "gap_in_flight_s": max((gaps[i] for i in in_flight), default=None),
                         "gap_killed_s": max((gaps[i] for i in mine if i in gaps), default=None),
                         "gap_all_s": max(gaps.values(), default=None), "unpolled": unpolled,
                         "lease_moved_s": moved, "node_forgotten_s": forgotten})
            print(f"  failover run {run + 1}: killed the leader {leader} (last poller of {len(mine)} sources, "
                  f"{len(in_flight)} of them in flight; it held {len(held)} poll job(s), {len(held - mine)} not claimed yet): "
                  f"longest gap {_s(runs[-1]['gap_killed_s'])}, its held jobs' sources {_s(runs[-1]['gap_held_s'])} "
                  f"(in flight {_s(runs[-1]['gap_in_flight_s'])}, all sources {_s(runs[-1]['gap_all_s'])}), "
                  f"rules lease moved after {_s(moved)}" + ("" if settled else "; NOT in steady state before the kill")
                  + (f"; not polled again within {dead_after + 2 * interval + 2:g} s: {unpolled}" if unpolled else ""),
                  flush=True)
            nodes[nodes.index(victim)] = fresh = DaemonProcess(cfg, data / f"restarted{run}.log").start()
            started.append(fresh)
            stack.callback(fresh.ensure_stopped)
            fresh.wait_for(JOINED, 120)
        stop_nodes(nodes)
        double = sum(y - x < interval / 2 for ts in feeds.times().values() for x, y in zip(ts, ts[1:]))
        errs = errors(started, "failover")
        db.engine.dispose()
    return {"runs": runs, "double_polls": double, **errs}


# -- report ------------------------------------------------------------------------------------
def _s(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} s"


def _med(values: list) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    return (statistics.median(values), max(values)) if values else (None, None)


def _cores(r: dict) -> str:
    return " / ".join(f"{r[k]:.2f}" for k in ("node_cores", "postgres_cores", "bench_cores", "machine_cores"))


def report(result: dict, args) -> None:
    print()
    if "lag" in result:
        lag = result["lag"]
        print(f"### Polls on time: {args.sources} sources every {args.interval:g} s, {args.periods:g} intervals "
              "after the first round\n")
        print("lag = poll_claimed_at − the next_poll_at it answered (source_state, sampled every 0.25 s); feed gap = "
              "time between two requests of a feed − interval (feed server).\n")
        print("| nodes | lag p50 | lag p99 | lag max | feed gap p50 / p99 | polls (sources) | polls per node "
              "| first round | CPU, cores: nodes / PostgreSQL / feed server+sampler / machine |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n, r in lag.items():
            print(f"| {n} | {_s(r['lag_p50'], 2)} | {_s(r['lag_p99'], 2)} | {_s(r['lag_max'], 2)} "
                  f"| {_s(r['gap_p50'], 2)} / {_s(r['gap_p99'], 2)} | {r['polls']} ({args.sources}) "
                  f"| {', '.join(map(str, r['polls_per_node']))} | {r['first_round_s']:.0f} s "
                  f"| {_cores(r)} |")
        for n, r in lag.items():
            notes = [f"{r['overdue']} source(s) still overdue at the end"] * bool(r["overdue"])
            notes += [f"{r['sources_without_poll']} source(s) not polled in the window"] * bool(r["sources_without_poll"])
            notes += [f"{r['double_polls']} feed(s) requested twice within half an interval"] * bool(r["double_polls"])
            notes += [f"{r['errors']} error line(s), first: {r['first_error']} (logs: {r['logs']})"] * bool(r["errors"])
            if notes:
                print(f"- {n} node(s): " + "; ".join(notes))
        print()
    if "throughput" in result:
        tp = result["throughput"]
        single = tp["single"]["mentions_per_s"]
        print(f"### Throughput: 100 feeds × 20 new posts every 500 ms, {args.seconds:g} s after {args.warmup:g} s "
              "warm-up; baseline: one single daemon (cluster off) on the same PostgreSQL\n")
        print("| daemons | stored mentions/s | per node | per node ÷ single | per CPU s of the nodes "
              "| CPU, cores: nodes / PostgreSQL / feed server / machine | polls per node |")
        print("|---|---|---|---|---|---|---|")
        for n, r in tp.items():
            print(f"| {'single' if n == 'single' else f'{n} node(s)'} | {r['mentions_per_s']:,.0f} | "
                  f"{r['per_node']:,.0f} | {r['per_node'] / single:.2f} | {r['per_cpu_s']:,.0f} | {_cores(r)} "
                  f"| {', '.join(map(str, r['polls_per_node'])) or '—'} |")
        if 1 in tp:
            print(f"\ncoordination overhead (1 cluster node ÷ single daemon): {tp[1]['mentions_per_s'] / single:.2f} "
                  f"in mentions/s, {tp[1]['per_cpu_s'] / tp['single']['per_cpu_s']:.2f} per CPU second")
        for n, r in tp.items():
            if r["errors"]:
                print(f"- {n}: {r['errors']} error line(s), first: {r['first_error']} (logs: {r['logs']})")
        print()
    if "failover" in result:
        fo = result["failover"]
        runs = fo["runs"]
        print(f"### Failover: {args.failover_nodes} nodes, {args.failover_sources} sources every "
              f"{args.failover_interval:g} s (feeds answer in {args.feed_delay:g} s), the rules leader killed with "
              f"SIGKILL, {len(runs)} runs\n")
        print("gap = longest time between two requests of one feed across the kill (normally the interval).\n")
        print("| | median | max |\n|---|---|---|")
        for label, key in [("longest gap, sources the killed node polled last", "gap_killed_s"),
                           ("longest gap, sources whose poll the killed node had in flight", "gap_in_flight_s"),
                           ("longest gap, sources whose poll job the killed node held", "gap_held_s"),
                           ("longest gap, any source", "gap_all_s"), ("rules lease moved after", "lease_moved_s"),
                           ("killed node forgotten (cluster_nodes) after", "node_forgotten_s")]:
            med, top = _med([r[key] for r in runs])
            print(f"| {label} | {_s(med)} | {_s(top)} |")
        for k, r in enumerate(runs, 1):
            if r["unpolled"] or not r["settled"]:
                print(f"- run {k}: " + ("not in steady state before the kill; " if not r["settled"] else "")
                      + (f"not polled again after the kill: {len(r['unpolled'])} source(s)" if r["unpolled"] else ""))
        if fo["double_polls"]:
            print(f"- {fo['double_polls']} request(s) of a feed within half an interval of the previous one")
        if fo["errors"]:
            print(f"- {fo['errors']} error line(s) in the nodes' logs, first: {fo['first_error']} (logs: {fo['logs']})")
    cmd = [".venv/bin/python", "tests/bench/bench_cluster.py"] + sys.argv[1:]
    print(f"\n{os.cpu_count()} cores, shared by the nodes, the feed server and PostgreSQL; {wl.load_note()}; "
          f"reproduce: {' '.join(cmd)}")
    print(json.dumps({"bench": "cluster", "tree": wl.tree_label(wl.PROJECT), "results": result}, ensure_ascii=False,
                     default=str))


if __name__ == "__main__":
    sys.exit(main())
