"""The /live broadcaster's flush window: small changes gathered, a burst sent at once."""

from __future__ import annotations

import queue
import time
from types import SimpleNamespace

from command.web import sockets


class _Sio:
    """What the broadcaster uses of Flask-SocketIO: the connection count, the rooms, emit."""

    def __init__(self, sent: queue.Queue, phones: int = 0) -> None:
        rooms = {"/live": {None: {"sid"}, "county": {"sid"}},
                 "/field": {None: {f"phone{i}" for i in range(phones)}}}
        self.server = SimpleNamespace(manager=SimpleNamespace(rooms=rooms))
        self._sent = sent

    def emit(self, event, items, namespace, to):
        self._sent.put((time.monotonic(), list(items)))


def test_a_burst_goes_out_without_waiting_out_the_flush_window(monkeypatch):
    # one connection widens the window to 3 s here, so waiting or not is plain to see
    monkeypatch.setattr(sockets, "WINDOW_PER_CONNECTION", 3.0)
    monkeypatch.setattr(sockets, "MAX_WINDOW", 3.0)
    sent: queue.Queue = queue.Queue()
    broadcast = sockets.Broadcaster(_Sio(sent), 0.02, lambda item: ["county"],
                                    [("/live", "incidents")])
    broadcast([{"seq": 1}])
    assert [i["seq"] for i in sent.get(timeout=5)[1]] == [1]  # idle: at once
    broadcast([{"seq": 2}])
    time.sleep(0.5)
    assert sent.empty()  # a small change waits for the window, to go out with what follows
    broadcast([{"seq": seq} for seq in range(3, 153)])
    at, items = sent.get(timeout=2)  # well inside the 3 s window
    assert [i["seq"] for i in items] == list(range(2, 153))
    broadcast([{"seq": 153}])
    assert sent.empty() and [i["seq"] for i in sent.get(timeout=10)[1]] == [153]


def test_the_window_counts_only_the_connections_the_changes_go_to(monkeypatch):
    monkeypatch.setattr(sockets, "WINDOW_PER_CONNECTION", 0.001)
    sio = _Sio(queue.Queue(), phones=1500)
    incidents = sockets.Broadcaster(sio, 0.02, lambda item: ["county"], [("/live", "incidents")])
    assert incidents._window() == 0.02  # one screen on /live; the phones get no incidents
    orders = sockets.Broadcaster(sio, 0.02, lambda item: ["county"],
                                 [("/live", "orders"), ("/field", "orders")])
    assert orders._window() == sockets.MAX_WINDOW  # 1,501 connections: 1.5 s, capped
