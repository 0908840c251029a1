"""A TCP proxy in front of the test server: the phone's "network", which a test can cut.

`Proxy(target_port).start()` listens on a free port and forwards every connection to the target;
`stop()` closes the listener and every connection (the server is unreachable: offline, for the
page and for its service worker alike — Playwright's set_offline does not cover the latter);
`start()` again brings it back on the same port. Optionally it throttles to `bytes_per_second`
and cuts every open connection each `cut_every` seconds (a mountain road's signal).
"""

from __future__ import annotations

import socket
import threading
import time

from tests import servers


class Proxy:
    """A stoppable, optionally slow and flaky TCP forwarder on 127.0.0.1."""

    def __init__(self, target_port: int, *, port: int | None = None,
                 bytes_per_second: float | None = None, cut_every: float | None = None) -> None:
        self.target_port = target_port
        self.port = port or servers.free_port()
        self.rate = bytes_per_second
        self.cut_every = cut_every
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()
        self.cuts = 0
        self.count: dict[str, int] | None = None  # {"up": n, "down": n}: bytes forwarded, if set

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Proxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._running.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        threading.Thread(target=self._cutter, daemon=True).start()
        return self

    def throttle(self, bytes_per_second: float | None, cut_every: float | None = None) -> None:
        """Change the link from now on (open connections too): its speed and how often it
        drops every connection (None: never)."""
        self.rate, self.cut_every = bytes_per_second, cut_every

    def stop(self) -> None:
        """Refuse new connections and drop the open ones."""
        self._running.clear()
        if self._listener is not None:
            try:  # shutdown wakes the thread blocked in accept(); close alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self._listener.close()
            except OSError:
                pass
            self._listener = None
        self.cut()

    def cut(self) -> None:
        """Drop every open connection (the listener stays)."""
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _cutter(self) -> None:
        last = time.monotonic()
        while self._running.is_set():
            time.sleep(0.1)
            if not self.cut_every:
                last = time.monotonic()
            elif time.monotonic() - last >= self.cut_every and self._running.is_set():
                last = time.monotonic()
                self.cuts += 1
                self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._running.is_set():
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pipe, args=(a, b, way), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while True:
                rate = self.rate
                data = src.recv(16384 if not rate else max(1024, int(rate / 20)))
                if not data:
                    break
                if rate:
                    time.sleep(len(data) / rate)
                dst.sendall(data)
                if self.count is not None:
                    self.count[way] += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            src.close()
