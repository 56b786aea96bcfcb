"""A TCP proxy in the test process that can cut a node off from PostgreSQL like a partition does.

``blackhole()`` stops moving bytes in both directions without closing anything: what the node sends
vanishes and no answer comes back; new connections are accepted and parked, never forwarded.
``heal()`` forwards new connections again. The connections cut off stay cut off (parked, and closed
at the end): a node must notice them dead by itself and connect again.

A userspace proxy cannot keep its kernel from acknowledging what the node sends, so the node's TCP
sees a peer that takes everything and never answers (like a hung pooler), not a silent network:
keepalives and ``tcp_user_timeout`` never fire and a query waits for good. ``kernel_drop`` (root,
``tc``) also drops the packets on the loopback, so that nothing is acknowledged either — what a real
partition looks like to the node's keepalives and ``tcp_user_timeout``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading


class TcpProxy:
    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = threading.Event()  # set: forwarding
        self._open.set()
        self._generation = 0  # bumped by blackhole(): connections of an older one never move a byte again
        self._socks: list[socket.socket] = []
        self._closed = False
        self._cleanup: list[tuple[str, ...]] = []  # undone last first
        self.accepted = self.parked = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    # -- control ------------------------------------------------------------------------------------
    def blackhole(self, kernel_drop: bool = False) -> None:
        with self._lock:
            self._open.clear()
            self._generation += 1
        if kernel_drop:
            self._drop_packets()

    def heal(self) -> None:
        self._undrop_packets()
        self._open.set()

    @staticmethod
    def can_drop_packets() -> bool:
        """Root with ``tc`` and ``ip``: packets can be dropped in the kernel."""
        return os.geteuid() == 0 and shutil.which("tc") is not None and shutil.which("ip") is not None

    def _drop_packets(self) -> None:
        """Drop every packet to or from the proxy's port at the loopback's ingress.

        With no drop action in every kernel, the packets are redirected to a device that is down
        (one end of a veth pair of its own, never brought up), which drops them; the u32 filters
        have a priority of their own, so that only they are removed again."""
        dev = f"pxdrop{self.port}"
        run = lambda *args: subprocess.run(args, capture_output=True, text=True)  # noqa: E731
        if run("ip", "link", "add", dev, "type", "veth", "peer", "name", f"{dev}b").returncode:
            raise RuntimeError(f"cannot create {dev}")
        self._cleanup.append(("ip", "link", "del", dev))
        if not run("tc", "qdisc", "add", "dev", "lo", "clsact").returncode:  # else there already: it stays
            self._cleanup.append(("tc", "qdisc", "del", "dev", "lo", "clsact"))
        prio = str(40000 + self.port % 20000)
        self._cleanup.append(("tc", "filter", "del", "dev", "lo", "ingress", "protocol", "ip", "prio", prio))
        for field in ("dport", "sport"):
            got = run("tc", "filter", "add", "dev", "lo", "ingress", "protocol", "ip", "prio", prio, "u32",
                      "match", "ip", field, str(self.port), "0xffff", "action", "mirred", "egress", "redirect",
                      "dev", dev)
            if got.returncode:
                self._undrop_packets()
                raise RuntimeError(f"tc filter: {got.stderr}")

    def _undrop_packets(self) -> None:
        while self._cleanup:
            step = self._cleanup.pop()
            if step[:2] == ("tc", "qdisc") and subprocess.run(  # the qdisc only if nobody else filters there
                    ["tc", "filter", "show", "dev", "lo", "ingress"], capture_output=True, text=True).stdout.strip():
                continue
            subprocess.run(step, capture_output=True)

    def close(self) -> None:
        self._undrop_packets()
        self._closed = True
        self._open.set()
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- forwarding ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(client)
                self.accepted += 1
                generation = self._generation
                if not self._open.is_set():
                    self.parked += 1  # accepted, never forwarded: the node's connect "succeeds" into silence
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, generation), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            # cut off: what was read vanishes and this connection stays silent for good (not closed)
            if self._generation != generation and not self._closed:
                return
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):  # an ordinary end on one side (PostgreSQL dropped it, the node closed it)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
