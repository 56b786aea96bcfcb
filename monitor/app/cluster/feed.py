"""What the nodes of a cluster stored since the leader last looked: new mentions and poll outcomes.

Mentions are read by id. Ids are handed out when a row is inserted but become visible only when its
transaction commits, so a smaller id may appear after a larger one was read: every id skipped over
is remembered as a *hole* and looked up again at each read until it turns up or ``hole_ttl`` passes
(ids are also used up by inserts that found their item already stored, and by rollbacks: those
holes simply expire). A storing transaction lasts well under a second, so a minute is ample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.core.domain import Mention
from monitor.storage import Database
from monitor.storage import cluster as store
from monitor.storage import repo

BATCH = 5000  # mentions per read; more wait for the next one
MAX_HOLES = 20_000  # a larger gap is a sequence jump, not transactions in flight


@dataclass
class Batch:
    mentions: list[Mention] = field(default_factory=list)
    polls: list[tuple[str, bool, str | None, int]] = field(default_factory=list)  # source, ok, error, stored
    polled_at: dict[str, datetime] = field(default_factory=dict)  # source -> its latest poll
    snapshots: list[tuple[str, list[dict]]] = field(default_factory=list)  # hot lists polled since: entries


class StoredFeed:
    def __init__(self, db: Database, *, hole_ttl: timedelta = timedelta(seconds=60)):
        self.db = db
        self.hole_ttl = hole_ttl
        self.last_id = 0
        self.holes: dict[int, datetime] = {}  # id -> when first missed
        self.marks: dict[str, store.PollMark] = {}

    def start(self, now: datetime, *, recheck: int = 2000) -> None:
        """Begin after what a warm-up just read: ids above the newest stored now are new, and the ids
        missing among the last ``recheck`` ones may still be committing."""
        with self.db.session() as s:
            self.last_id = repo.last_mention_id(s)
            low = max(0, self.last_id - recheck)
            present = repo.mention_ids_between(s, low, self.last_id)
            self.marks = store.poll_marks(s)
        self.holes = {i: now for i in range(low + 1, self.last_id + 1) if i not in present}

    def read(self, now: datetime) -> Batch:
        batch = Batch()
        with self.db.session() as s:
            late = repo.mentions_by_ids(s, sorted(self.holes)) if self.holes else []
            new = repo.mentions_after(s, self.last_id, BATCH)
            marks = store.poll_marks(s)
            for name, mark in marks.items():
                before = self.marks.get(name)
                if mark.snapshot_at is not None and (before is None or before.snapshot_at != mark.snapshot_at):
                    latest = repo.latest_snapshot(s, name)
                    if latest is not None:
                        batch.snapshots.append((name, latest[1]))
        for m in late:
            self.holes.pop(m.id, None)
        expected = self.last_id + 1
        for m in new:
            if m.id - expected <= MAX_HOLES:
                self.holes.update((i, now) for i in range(expected, m.id))
            expected = m.id + 1
        if new:
            self.last_id = new[-1].id
        self.holes = {i: at for i, at in self.holes.items() if now - at < self.hole_ttl}
        batch.mentions = late + new
        for name, mark in marks.items():
            before = self.marks.get(name)
            if mark.last_poll_at is not None and (before is None or before.last_poll_at != mark.last_poll_at):
                ok = mark.last_success_at == mark.last_poll_at
                stored = max(0, mark.items_stored - (before.items_stored if before else 0))
                batch.polls.append((name, ok, None if ok else mark.last_error, stored))
            if mark.last_poll_at is not None:
                batch.polled_at[name] = mark.last_poll_at
        self.marks = marks
        return batch
