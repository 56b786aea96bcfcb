"""Start-up cost of the command line and of many HTTP sources (issue 11, "Performance").

Each figure is the best of ``--runs`` fresh processes, wall and CPU time (user + system), and a
ratio to the baseline measured in the same run, ``python -c pass``:

- ``import monitor.cli``; ``monitor --help``;
- ``monitor incidents list`` and ``monitor status`` on a SQLite database with ``--incidents``
  incidents (default 300) — goal (the issue): ``incidents list`` within 0.3 s wall;
- building ``--sources`` HTTP fetchers (default 100; every tenth through a proxy, each with its own
  user agent, headers and timeout), imports excluded, as ms and as a multiple of building one TLS
  context (what each fetcher used to do).

The processes cache bytecode (``PYTHONPYCACHEPREFIX`` in a temporary directory, one warm-up run),
as an installed package has its ``.pyc`` files. ``--root DIR`` measures another checkout with this
virtualenv, e.g. the commit before: ``git archive HEAD~1 | tar -x -C /tmp/before`` (its database is
seeded by its own code). Stdout goes to a pipe, so rich draws 80 columns.

Run: ``.venv/bin/python tests/bench/bench_startup.py [--runs 7] [--incidents 300] [--sources 100] [--root DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL_LIST_S = 0.3

SEED = """
import json, sys
from datetime import datetime, timedelta, timezone
from alerts.incidents import IncidentManager
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.storage import Database

folder, count = sys.argv[1], int(sys.argv[2])
url = f"sqlite:///{folder}/monitor.db"
db = Database(url)
db.migrate()
manager = IncidentManager(db)
t0 = datetime(2026, 3, 15, 4, 0, tzinfo=timezone.utc)
severities = [Severity.IV, Severity.III, Severity.II, Severity.I]
for i in range(count):
    at = t0 + timedelta(minutes=7 * i)
    topic = f"话题{i % 40}·{i}"
    manager.handle([Match("firing", "负面激增", "negative_spike", topic, at, severities[i % 4],
                          f"「{topic}」负面声量激增：近10分钟负面 {30 + i % 50} 条，是基线的 {3 + i % 7}.5 倍",
                          {"current_negative": 30 + i % 50, "ratio": 3.5})], at)
db.dispose()
with open(f"{folder}/monitor.yaml", "w", encoding="utf-8") as f:
    f.write(f"storage:\\n  url: {json.dumps(url)}\\n"
            "sources:\\n  - name: 微博搜索\\n    type: rss\\n    url: https://rsshub.example.com/weibo/keyword/x\\n"
            "topics:\\n  - name: 鲜丰奶茶\\n    keywords: [鲜丰]\\n")
"""

FETCHERS = """
import json, sys, time
import httpx
from sources.http import HttpFetcher

count = int(sys.argv[1])
started = time.perf_counter()
httpx.create_ssl_context()
one_context = time.perf_counter() - started
started = time.perf_counter()
fetchers = [HttpFetcher(f"source-{i}", user_agent=f"sentinel-{i}", headers={"Cookie": f"id={i}"}, timeout=5 + i % 10,
                        proxy="http://127.0.0.1:3128" if i % 10 == 0 else None) for i in range(count)]
built = time.perf_counter() - started
print(json.dumps({"one_context": one_context, "fetchers": built}))
"""


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one process, started outside any checkout (``python -c`` puts its
    working directory first on the path): PYTHONPATH names the code measured."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # `monitor status` exits 1 when no daemon is alive
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def best(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    run_once(argv, env)  # warm-up: bytecode written, files in the page cache
    results = [run_once(argv, env)[:2] for _ in range(runs)]
    return min(w for w, _ in results), min(c for _, c in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    python = sys.executable
    script = Path(python).with_name("monitor")
    monitor = [str(script)] if script.exists() else [python, "-m", "monitor"]

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "MONITOR_CONFIG")}
        env |= {"PYTHONPATH": str(root), "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"), "NO_COLOR": "1"}
        subprocess.run([python, "-c", SEED, tmp, str(args.incidents)], env=env, cwd=tmp, check=True)
        config = str(Path(tmp) / "monitor.yaml")
        cases = [
            ("python -c pass (baseline)", [python, "-c", "pass"]),
            ("import monitor.cli", [python, "-c", "import monitor.cli"]),
            ("monitor --help", [*monitor, "--help"]),
            (f"monitor incidents list ({args.incidents})", [*monitor, "incidents", "list", "--config", config]),
            ("monitor status", [*monitor, "status", "--config", config]),
        ]
        print(f"{root} · best of {args.runs} · {os.cpu_count()} CPUs · load {os.getloadavg()[0]:.2f}")
        print(f"{'':34} {'wall ms':>8} {'× base':>7} {'CPU ms':>8} {'× base':>7}")
        base = None
        for label, argv in cases:
            wall, cpu = best(argv, env, args.runs)
            base = base or (wall, cpu)
            print(f"{label:34} {wall * 1000:8.0f} {wall / base[0]:7.1f} {cpu * 1000:8.0f} {cpu / base[1]:7.1f}")
            if label.startswith("monitor incidents list"):
                verdict = "within" if wall <= GOAL_LIST_S else "over"
                print(f"{'':34} goal ≤ {GOAL_LIST_S * 1000:.0f} ms wall: {verdict}")

        samples = [json.loads(run_once([python, "-c", FETCHERS, str(args.sources)], env)[2])
                   for _ in range(max(3, args.runs // 2))]
        one = min(s["one_context"] for s in samples)
        built = min(s["fetchers"] for s in samples)
        print(f"{args.sources} HTTP fetchers built: {built * 1000:.0f} ms ({built / args.sources * 1000:.1f} ms each) "
              f"= {built / one:.1f} × building one TLS context ({one * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
