"""The production server: compressed answers, and a graceful shutdown under a 200/s stream."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import sqlite3
import threading
import time
from datetime import datetime, timezone

import requests
import socketio

from command import green
from tests import servers

RATE = 200.0


def test_only_the_serving_commands_are_patched():
    assert green.command_of(["serve", "--port", "1"]) == "serve"
    assert green.command_of(["--data-dir", "serve", "demo"]) == "demo"
    assert green.command_of(["--data-dir=x", "feeds", "list"]) == "feeds"
    assert green.command_of([]) is None
    assert not green.active()  # the tests import the app in-process: plain threads


def test_the_startup_objects_are_frozen_out_of_full_collections(server):
    # a full collection walks every object it tracks and stops the process, every screen's
    # greenlet with it: the app's ~200,000 startup objects are frozen before serving
    import re

    said = re.search(r"froze (\d+) startup objects", server.log.read_text(errors="replace"))
    assert said is not None and int(said.group(1)) > 50_000


def test_answers_are_gzipped_but_images_are_not(server):
    login = requests.get(server.url + "/login", headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert login.headers.get("Content-Encoding") == "gzip"
    raw = requests.get(server.url + "/login", headers={"Accept-Encoding": "gzip"}, timeout=30,
                       stream=True).raw.read()
    assert b"<html" in gzip.decompress(raw).lower()
    units = server.get("/api/v1/units", headers={"Accept-Encoding": "gzip"})
    assert units.ok and units.headers.get("Content-Encoding") == "gzip"
    plain = server.get("/api/v1/units", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.json() == units.json()
    icon = requests.get(server.url + "/grid/static/icon-192.png", headers={"Accept-Encoding": "gzip"},
                        timeout=30)
    if icon.ok:  # a PNG is compressed already
        assert "Content-Encoding" not in icon.headers


def _report(i: int) -> dict:
    return {"id": f"gs-{i}", "type": "突发事件", "lon": 120.2, "lat": 30.05,
            "occurred_at": datetime.now(timezone.utc).isoformat(), "title": f"事件 {i}",
            "severity": 3}


def test_an_answer_before_the_body_closes_the_connection(server):
    """A request refused before its body is read (here: 401 to a 64 MiB Content-Length that
    never comes) gets its answer and then the end of the connection, not a server waiting to
    read and discard the rest; a keep-alive session of ordinary requests stays one connection."""
    for close in (b"Connection: close\r\n", b""):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer nothing\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 67108864\r\n" + close + b"\r\n")
            started, data = time.monotonic(), b""
            while chunk := sock.recv(65536):  # a timeout here is the failure
                data += chunk
            assert time.monotonic() - started < 5
        assert data.startswith(b"HTTP/1.1 401")
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(server.url + "/healthz", timeout=10).status_code == 200


def test_sigterm_mid_stream_stores_every_acked_report_once(tmp_path):
    env = {"CMDCENTER_LOG": "INFO", "CMDCENTER_RATE_PER_SECOND": "100000",
           "CMDCENTER_RATE_BURST": "100000"}
    port = servers.free_port()
    server = servers.Server(tmp_path / "data", port, env).start()
    token = server.add_feed("stream")
    reasons: list[str] = []
    live = socketio.Client(reconnection=True, reconnection_delay=0.5,
                           reconnection_delay_max=1.0)
    live.on("disconnect", lambda reason=None: reasons.append(reason), namespace="/live")
    live.connect(server.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
                 auth={"token": server.duty_token})
    feed = socketio.Client(reconnection=False)
    feed.connect(server.url, namespaces=["/feed"], transports=["websocket"], wait_timeout=10,
                 auth={"token": token})
    acked: list[str] = []
    refused: list[dict] = []
    sent: list[str] = []
    lock = threading.Lock()

    def on_ack(report_id, answer=None):
        with lock:
            if isinstance(answer, dict) and answer.get("ok"):
                acked.append(report_id)
            else:
                refused.append(answer)

    def stream():
        start = time.monotonic()
        for i in range(100_000):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                feed.emit("report", _report(i), namespace="/feed",
                          callback=lambda answer=None, k=f"gs-{i}": on_ack(k, answer))
            except Exception:  # disconnected: the server is going away
                return
            sent.append(f"gs-{i}")

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    time.sleep(2.0)
    with lock:
        acked_before = len(acked)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(15)
    took = time.monotonic() - signalled
    sender.join(10)
    time.sleep(0.5)  # acks already on the wire
    log = server.log.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert took < 10, f"exit took {took:.1f} s"
    assert acked_before > 200 and len(acked) >= acked_before
    assert reasons and all(r != "io server disconnect" for r in reasons), reasons  # will retry
    assert all(isinstance(a, dict) and a["error"]["code"] == "unavailable" for a in refused), \
        refused[:3]

    restarted = servers.Server(tmp_path / "data", port, env).start()
    try:
        with sqlite3.connect(tmp_path / "data" / "cmdcenter.sqlite3") as db:
            rows = db.execute("SELECT source_id, COUNT(*), MIN(seq) FROM incidents "
                              "WHERE source_id LIKE 'gs-%' GROUP BY source_id").fetchall()
        stored = {source_id: count for source_id, count, _ in rows}
        assert set(acked) <= set(stored), sorted(set(acked) - set(stored))[:5]
        assert all(count == 1 for count in stored.values())
        assert all(seq is not None for _, _, seq in rows)  # whole rows, committed
        assert set(stored) <= set(sent)
        deadline = time.monotonic() + 30
        while not live.connected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert live.connected  # the screen came back by itself
    finally:
        live.disconnect()
        restarted.stop()


def _read_frames(sock, ws, until, timeout: float) -> list[str]:
    """Read websocket text messages (answering Engine.IO pings) until `until(messages)`."""
    from wsproto.events import CloseConnection, Ping, TextMessage

    messages: list[str] = []
    parts: list[str] = []
    deadline = time.monotonic() + timeout
    sock.settimeout(1.0)
    while not until(messages) and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        assert data, "the server closed the connection"
        ws.receive_data(data)
        for event in ws.events():  # a truncated frame raises or closes here
            assert not isinstance(event, CloseConnection), f"closed: {event}"
            if isinstance(event, Ping):
                sock.sendall(ws.send(event.response()))
            elif isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    message = "".join(parts)
                    parts.clear()
                    if message == "2":  # Engine.IO ping
                        sock.sendall(ws.send(TextMessage(data="3")))
                    messages.append(message)
    return messages


def test_a_screen_slower_than_a_burst_gets_every_frame_whole(tmp_path):
    """A screen that reads slower than the server writes (a phone on a weak link, nginx's small
    buffer in between) still gets every frame whole. simple-websocket writes a frame with one
    `send` and ignores how much of it the socket took: on gevent's non-blocking sockets the rest
    of a frame larger than the free send buffer was dropped, the next frame's bytes read as
    its continuation, and the client saw an invalid frame (1007) and lost the connection."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    env = {"CMDCENTER_RATE_PER_SECOND": "100000", "CMDCENTER_RATE_BURST": "100000"}
    server = servers.Server(tmp_path / "data", servers.free_port(), env).start()
    try:
        token = server.duty_token
        feed = server.add_feed("slow-reader")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.connect(("127.0.0.1", server.port))
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(Request(host="127.0.0.1",
                                     target="/socket.io/?EIO=4&transport=websocket")))
        sock.settimeout(10)
        ws.receive_data(sock.recv(65536))
        assert any(isinstance(e, AcceptConnection) for e in ws.events())
        assert _read_frames(sock, ws, lambda m: any(x.startswith("0{") for x in m), 10)
        sock.sendall(ws.send(TextMessage(data="40/live," + json.dumps({"token": token}))))
        assert _read_frames(sock, ws, lambda m: any(x.startswith("40/live,") for x in m), 10)

        # ~2 MB of incidents in a few frames while the screen reads nothing
        body = [{**_report(i), "id": f"slow-{i}", "description": "长" * 1500} for i in range(400)]
        answer = requests.post(server.url + "/api/v1/reports", json=body, timeout=120,
                               headers={"Authorization": f"Bearer {feed}"})
        assert answer.status_code == 200 and all(a["ok"] for a in answer.json())
        time.sleep(2)

        seen: set[str] = set()

        def complete(messages: list[str]) -> bool:
            for message in messages[len(complete.done):]:
                if message.startswith('42/live,["incidents"'):
                    _name, items = json.loads(message[len("42/live,"):])
                    seen.update(item["source_id"] for item in items)
            complete.done = list(messages)
            return len(seen) >= len(body)
        complete.done = []
        _read_frames(sock, ws, complete, 60)
        assert seen == {item["id"] for item in body}
        sock.close()
    finally:
        server.stop()


WAITING_WRITER = r'''
import sys, threading, time
from command import green
assert green.patch_for_serving(["serve"])
import gevent
import sqlalchemy as sa
from gevent import monkey
from command.db import make_engine, make_sessionmaker

engine = make_engine("sqlite:///" + sys.argv[1])
with engine.begin() as conn:
    conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
write = make_sessionmaker(engine, write=True)
holding = threading.Event()

def hold():  # the ingest writer on a native thread, in a long transaction
    with write() as session, session.begin():
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        holding.set()
        monkey.get_original("time", "sleep")(0.6)

gevent.get_hub().threadpool.spawn(hold)
while not holding.is_set():
    gevent.sleep(0.005)
gaps, last, done = [], time.monotonic(), []

def tick():
    global last
    while not done:
        gevent.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now

def hub_writer():  # a scheduler job on the hub
    with write() as session, session.begin():
        session.execute(sa.text("INSERT INTO t VALUES (2)"))
    done.append(True)

gevent.joinall([gevent.spawn(tick), gevent.spawn(hub_writer)], timeout=10)
with engine.connect() as conn:
    rows = sorted(r[0] for r in conn.exec_driver_sql("SELECT x FROM t"))
print(max(gaps), rows)
'''


def test_a_writer_on_the_hub_waits_for_sqlite_without_stopping_it(tmp_path):
    """With SQLite, a write on gevent's hub (a scheduler job, a REST write) waiting for the
    write lock held by the ingest writer's native thread lets every other greenlet run; SQLite's
    own busy handler slept inside C and froze the whole process meanwhile."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WAITING_WRITER, str(tmp_path / "w.db")],
                          capture_output=True, text=True, timeout=60, cwd=servers.ROOT)
    assert done.returncode == 0, done.stderr
    longest, rows = done.stdout.split(" ", 1)
    assert rows.strip() == "[1, 2]"  # both writes stored, the hub's after the thread's
    assert float(longest) < 0.3  # the hub kept running while the writer waited (0.6 s)


def test_a_screen_gets_every_change_in_order_for_longer_than_the_writers_patience(tmp_path):
    """Packets to a websocket go straight to its socket as ready frames (command.web.server,
    _direct_sends). The frames arrive in seq order, none twice, and the connection outlives
    Engine.IO's writer timeout (ping interval + ping timeout without a queued packet closes a
    websocket: pings stay on its queue). Pings every 2 s here: the writer's patience is 6 s."""
    env = {"CMDCENTER_RATE_PER_SECOND": "100000", "CMDCENTER_RATE_BURST": "100000",
           "CMDCENTER_PING_SECONDS": "2"}
    server = servers.Server(tmp_path / "data", servers.free_port(), env).start()
    seqs: list[int] = []
    drops: list = []
    screen = socketio.Client(reconnection=False)
    screen.on("incidents", lambda items: seqs.extend(i["seq"] for i in items), namespace="/live")
    screen.on("disconnect", lambda reason=None: drops.append(reason), namespace="/live")
    try:
        feed = server.add_feed("steady")
        screen.connect(server.url, namespaces=["/live"], transports=["websocket"],
                       auth={"token": server.duty_token}, wait_timeout=10)
        sent = 0
        with requests.Session() as http:
            deadline = time.monotonic() + 9
            while time.monotonic() < deadline:
                body = [{**_report(sent + k), "id": f"steady-{sent + k}"} for k in range(5)]
                answer = http.post(server.url + "/api/v1/reports", json=body, timeout=30,
                                   headers={"Authorization": f"Bearer {feed}"})
                assert answer.status_code == 200
                sent += len(body)
                time.sleep(0.25)
        until = time.monotonic() + 10
        while len(seqs) < sent and time.monotonic() < until:
            time.sleep(0.1)
        assert not drops and screen.connected
        assert len(seqs) == sent
        assert seqs == sorted(set(seqs))  # in order, none twice
    finally:
        screen.disconnect()
        server.stop()
