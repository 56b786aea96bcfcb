"""A host's request slots shared by every node of a cluster (sources.httpguard.SharedSlots), kept in
the database: ``max_concurrent`` / ``max_per_host`` hold for the whole cluster, not per node. A slot a
node took expires after the request's deadline, so a node killed mid-request frees it by itself."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Callable

from monitor.storage import Database, cluster


class SharedHostSlots:
    def __init__(self, db: Database, node: str, clock: Callable[[], datetime]):
        self.db = db
        self.node = node
        self.clock = clock

    def take(self, host: str, limit: int, hold_for: float) -> tuple[str, int, str] | None:
        holder = f"{self.node}/{threading.get_ident()}"
        now = self.clock()
        with self.db.session() as s:
            slot = cluster.take_host_slot(s, host, limit, holder, now, now + timedelta(seconds=hold_for))
        return None if slot is None else (host, slot, holder)

    def give_back(self, slot: tuple[str, int, str]) -> None:
        host, number, holder = slot
        with self.db.session() as s:
            cluster.free_host_slot(s, host, number, holder)
