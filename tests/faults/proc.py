"""Real `monitor run` processes for the fault suite: start, wait for the log, SIGTERM, kill -9,
and the process tree under /proc (scoring workers and the resource tracker are its children)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from monitor.storage import Database
from monitor.storage.models import MentionRow, SourceStateRow

REPO = Path(__file__).resolve().parents[2]


def config_text(*, data_dir: Path, db_url: str, model: Path, body: str, sentiment: str = "") -> str:
    """A config on the test's database and the shared prebuilt model, plus ``body`` (sources, rules …)."""
    return f"""
data_dir: {data_dir}
storage: {{url: "{db_url}"}}
sentiment: {{model: {model}{", " + sentiment if sentiment else ""}}}
{body}"""


class DaemonProcess:
    """One `monitor run --config FILE` at a time; its output appended to ``log``."""

    def __init__(self, config: Path, log: Path):
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self._mark = 0

    def start(self) -> "DaemonProcess":
        self._mark = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                                         cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        """What this run (since the last start) wrote."""
        with self.log.open("rb") as f:
            f.seek(self._mark)
            return f.read().decode("utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float) -> float:
        """Seconds since start when ``text`` appeared in this run's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return time.monotonic() - self.started_at
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode} before {text!r}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the daemon's output within {timeout}s:\n{self.output()[-4000:]}")

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill9(self) -> list[int]:
        """``kill -9``; returns the pids of the children it left behind (to check they go)."""
        kids = descendants(self.pid)
        self.proc.kill()
        self.proc.wait(timeout=10)
        return kids

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[1])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[1], []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def running(pids: list[int]) -> list[int]:
    """The pids still running (a zombie waiting for a reaper has ended)."""
    return [p for p in pids if (st := _stat(p)) is not None and st[0] != "Z"]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := running(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def mention_counts(db: Database, source: str | None = None) -> tuple[int, int]:
    """(rows, distinct external ids) of the stored mentions (of one source)."""
    with db.session() as s:
        q = select(func.count(), func.count(func.distinct(MentionRow.source + ":" + MentionRow.external_id)))
        if source is not None:
            q = q.where(MentionRow.source == source)
        rows, distinct = s.execute(q).one()
        return rows, distinct


def stored_ids(db: Database, source: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(MentionRow.external_id).where(MentionRow.source == source)))


def source_state(db: Database, name: str) -> SourceStateRow | None:
    with db.session() as s:
        row = s.get(SourceStateRow, name)
        if row is not None:
            s.expunge(row)
        return row
