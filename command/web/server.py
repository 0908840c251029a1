"""The production server: gevent's WSGI server, one hub, a greenlet per connection.

Socket.IO runs in Flask-SocketIO's `gevent` mode with simple-websocket for the websockets; Dash,
the REST API and the static files are plain WSGI on the same port. Responses are compressed by
the app (command.web.compress), not here.

Graceful shutdown (SIGTERM or SIGINT):
1. the listening socket closes (no new connections; nginx moves on to another process);
2. feeds' new reports are answered `unavailable` (retry after reconnecting), what the ingest
   writer has queued is stored and acknowledged, and events already being handled finish;
3. every connection is dropped as a lost one is (no Socket.IO or Engine.IO goodbye, after
   which clients would not come back): browsers and feeds reconnect, to another process or
   to this one restarted, and catch up by `seq`;
4. the background jobs stop and the process exits with 0. A second signal, or 10 s, ends it at
   once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import deque
from typing import Callable

log = logging.getLogger(__name__)

# an unread rest of a request body up to this size is read and dropped (the connection is kept);
# a larger one closes the connection after the answer
DISCARD_MAX = 64 * 1024

DEADLINE_SECONDS = 10.0  # from the signal to the exit, whatever happens
DRAIN_SECONDS = 5.0  # for the ingest writer's queue and the events being handled


def freeze_startup_objects() -> int:
    """Collect once, then move every object alive now (modules, the Dash app and its layouts,
    the units' geometry: ~200,000 of them) out of the garbage collector's sight for good, and
    return how many were moved.

    Python's full collection walks every tracked object, and it stops the whole process, every
    greenlet with it: measured under the county peak (bench.load), full collections over
    ~300,000 objects took 170–360 ms, several times a minute per process, and one falling on a
    burst holds its acks and its delivery that long. With the startup objects frozen they took
    25–90 ms.
    What is created later (connections, incidents) is collected as before; frozen objects
    that become garbage are still freed by reference counting, only cycles among them stay.
    """
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GeventServer:
    """`app` (a WSGI app with Socket.IO installed) on host:port until a signal stops it."""

    def __init__(self, wsgi_app, host: str, port: int, *, socketio,
                 before_close: list[Callable[[], None]] | None = None,
                 drain: Callable[[float], None] | None = None) -> None:
        from gevent import pywsgi

        self._socketio = socketio
        self._before_close = before_close or []  # e.g. stop the demo's own feeds
        self._drain = drain  # stop taking reports, store and answer what is queued
        self._stop = None
        if socketio.server is not None:
            _whole_frames(socketio.server.eio)
        self.server = pywsgi.WSGIServer((host, port), _uncompressed_websockets(wsgi_app),
                                        log=None, error_log=_ErrorLog(),
                                        handler_class=_handler_class())

    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down gracefully."""
        import gevent
        from gevent.event import Event

        self._stop = Event()
        signals = 0

        def on_signal(signum: int) -> None:
            nonlocal signals
            signals += 1
            if signals > 1:  # a second Ctrl+C: do not wait
                log.warning("second signal: exiting now")
                os._exit(1)
            log.info("%s: shutting down", signal.Signals(signum).name)
            # the backstop: whatever blocks below, the process is gone in 10 s
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(int(DEADLINE_SECONDS))
            self._stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, on_signal, signum)
        log.info("froze %d startup objects out of the garbage collector's way",
                 freeze_startup_objects())
        self.server.start()
        self._stop.wait()
        self.shutdown()

    def stop(self) -> None:
        """Ask for the graceful shutdown (as a signal would)."""
        if self._stop is not None:
            self._stop.set()

    def shutdown(self) -> None:
        """Stop taking connections, finish and answer queued work, close every connection."""
        import gevent

        started = time.monotonic()
        self.server.close()  # the listening socket: nothing new comes in
        for hook in self._before_close:
            try:
                hook()
            except Exception:
                log.exception("shutdown hook failed")
        if self._drain is not None:
            try:
                self._drain(DRAIN_SECONDS)
            except Exception:
                log.exception("draining the ingest queue failed")
        eio = self._socketio.server.eio if self._socketio.server is not None else None
        if eio is not None:
            _drop_connections(eio)
        gevent.sleep(0.2)  # the websocket close frames' way out
        self.server.stop(timeout=1.0)
        log.info("stopped in %.1f s", time.monotonic() - started)


def _drop_connections(eio) -> None:
    """Close every Engine.IO connection the way a lost connection ends, so clients reconnect.

    Neither a Socket.IO disconnect nor an Engine.IO CLOSE packet: after either, python-socketio
    clients (feeds) stop for good (socket.io-client retries after an Engine.IO CLOSE, not after
    a Socket.IO one). Aborting ends the websocket with a plain close frame, and a polling
    client's next request meets an unknown session: both reconnect.
    """
    for socket in list(eio.sockets.values()):
        try:
            socket.close(wait=False, abort=True, reason=eio.reason.SERVER_DISCONNECT)
        except Exception:
            log.warning("closing a connection failed", exc_info=True)
    eio.sockets = {}


class _WholeWrites:
    """A websocket's socket whose writes are whole, in order, one writer at a time, and which
    takes ready frames (`post`) without ever making the poster wait.

    simple-websocket writes each frame with a single `sock.send` and ignores how much the socket
    took. gevent's sockets are non-blocking underneath: a frame larger than the free send buffer
    (a burst of incidents to a screen reading slower than we write: a phone on a weak link, or
    nginx's small buffer in between) went out cut short, the next frame's bytes were read as
    its continuation and the client dropped the connection as invalid (1007). Here `send`
    waits, cooperatively, until the socket has taken all of it; a lock keeps the frames of the
    writers (Engine.IO's writer, the reader's pongs and close) from interleaving.

    `post` (see _direct_sends) writes what the socket takes at once and keeps the rest, in
    order, for a greenlet of its own: a broadcast to a thousand screens never waits for a slow
    one. What `send` writes goes after everything posted before it.
    """

    def __init__(self, sock) -> None:
        from gevent.lock import Semaphore

        self._sock = sock
        self._writing = Semaphore()
        self._pending: deque = deque()  # posted frames (or their rests) not written yet
        self._flusher = None
        self.closing = False  # the websocket is closing: post no more frames

    def send(self, data, flags: int = 0) -> int:
        with self._writing:
            # Engine.IO's writer only sends what was queued before the posting began (or a
            # ping), the reader pongs and closes: all of it goes before what was posted since
            self._write(data, flags)
            if self.closing:
                self._pending.clear()  # nothing may follow a close frame
            else:
                self._drain()
        return len(data)

    sendall = send

    def post(self, frame: bytes) -> bool:
        """Write a complete websocket frame now or soon, never waiting; False if this
        connection can take no more (the caller sends it the ordinary way, which fails)."""
        if self.closing:
            return False
        if self._pending or self._writing.locked():
            self._pending.append(frame)
            self._schedule()
            return True
        try:
            sent = self._sock._sock.send(frame)  # the OS socket, non-blocking: never waits
        except BlockingIOError:
            sent = 0
        except OSError:
            self.closing = True
            return False
        if sent < len(frame):
            self._pending.append(memoryview(frame)[sent:])
            self._schedule()
        return True

    def _write(self, data, flags: int = 0) -> None:
        # one plain send takes a whole frame almost always; gevent's sendall costs a
        # getsockopt and a Python loop per call (measurable at 10,000 frames/s)
        sent = self._sock.send(data, flags)
        if sent < len(data):
            self._sock.sendall(memoryview(data)[sent:], flags)

    def _drain(self) -> None:
        while self._pending:
            self._write(self._pending.popleft())

    def _schedule(self) -> None:
        if self._flusher is None:
            import gevent

            self._flusher = gevent.spawn(self._flush)

    def _flush(self) -> None:
        try:
            with self._writing:
                self._drain()
        except OSError:
            self.closing = True
            self._pending.clear()
        finally:
            self._flusher = None

    def __getattr__(self, name):
        return getattr(self._sock, name)


def websocket_frame(data) -> bytes:
    """One unmasked, unfragmented websocket frame (RFC 6455 §5.2) carrying `data`: a text
    frame for a str, a binary frame for bytes."""
    if isinstance(data, str):
        payload, opcode = data.encode("utf-8"), 0x1
    else:
        payload, opcode = bytes(data), 0x2
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return header + payload


def _whole_frames(eio) -> None:
    """Make this Engine.IO server's websockets write whole frames (see _WholeWrites) and send
    their packets directly (see _direct_sends)."""
    import simple_websocket
    from engineio.async_drivers import gevent as driver

    if driver.SimpleWebSocketWSGI is None:  # gevent-websocket installed: not simple-websocket
        return
    WebSocketWSGI = driver.WebSocketWSGI

    class WholeFramesServer(simple_websocket.Server):
        def handshake(self):
            self.sock = _WholeWrites(self.sock)
            super().handshake()

        def close(self, *args, **kwargs):
            self.sock.closing = True  # no data frame may follow the close frame
            return super().close(*args, **kwargs)

    class WholeFramesWSGI(WebSocketWSGI):
        def __call__(self, environ, start_response):
            self.ws = WholeFramesServer(environ, **self.server_args)
            return self.app(self)

    eio._async = {**eio._async, "websocket": WholeFramesWSGI}
    _direct_sends()


def _direct_sends() -> None:
    """Engine.IO packets to a websocket go straight to its socket, as ready frames.

    Engine.IO queues every packet for a writer greenlet per connection, which encodes it, has
    wsproto frame it and writes it: ~30 µs of Python per frame, and a broadcast of one message
    to a room is one such frame per member (2,000 screens at 10 changes/s: a core). Here a
    packet sent to an upgraded websocket becomes one frame, made once per packet object (a
    room's broadcast hands every member the same one) and posted to the connection's socket.
    A connection still polling, upgrading, with packets already queued or closing goes the
    ordinary way; once its queue is empty everything goes direct, so the order is kept. Pings
    stay on the queue: Engine.IO's writer closes a websocket whose queue stays empty longer than
    the ping interval and timeout together.
    """
    from engineio import packet as eio_packet
    from engineio import socket as eio_socket

    Socket = eio_socket.Socket
    if getattr(Socket, "_cmdcenter_direct", False):
        return
    queued_send = Socket.send
    handler = Socket._websocket_handler

    def send(self, pkt):
        writes = self.__dict__.get("_direct")
        if (writes is not None and pkt.packet_type != eio_packet.PING and self.upgraded
                and not self.upgrading and not self.closing and not self.closed
                and self.queue.empty()):
            if not self.check_ping_timeout():
                return
            frame = pkt.__dict__.get("_frame")
            if frame is None:
                frame = pkt._frame = websocket_frame(pkt.encode())
            if writes.post(frame):
                return
        queued_send(self, pkt)

    def websocket_handler(self, ws):
        writes = getattr(getattr(ws, "ws", None), "sock", None)
        self._direct = writes if isinstance(writes, _WholeWrites) else None
        try:
            return handler(self, ws)
        finally:
            self._direct = None

    Socket.send = send
    Socket._websocket_handler = websocket_handler
    Socket._cmdcenter_direct = True


def _uncompressed_websockets(app):
    """Refuse websocket compression (permessage-deflate): a broadcast to N screens would be
    deflated N times, once per connection's own compressor. Measured with 1,000 `/live`
    screens: 56 % of the server's time went to it. Our frames are small JSON on a LAN."""
    def without_extensions(environ, start_response):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return app(environ, start_response)
    return without_extensions


def _handler_class():
    from gevent import pywsgi

    class Handler(pywsgi.WSGIHandler):
        """gevent's handler, with three changes.

        - TCP_NODELAY on every connection: an answer goes out as gevent writes it (headers,
          then body) instead of its second write waiting for the client's delayed ACK — 40 ms
          added to every request on a kept-alive connection (measured: GET /healthz 44 ms → 1 ms).
        - The connection closes after a websocket: its bytes are no HTTP request to read.
        - It closes after an answer given before a large body was read (a refusal: 401, 413 …
          to a body of more than DISCARD_MAX): gevent would otherwise read and throw away the
          rest before the next request, and a client that announced 64 MiB and sent none held
          the connection (and its greenlet) until it gave up, the answer it waited for sent. A
          small unread rest is still read and discarded, so a kept-alive client carries on.
        """

        def handle(self):
            try:
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # not TCP (a test's socketpair)
            return super().handle()

        def run_application(self):
            websocket = self.environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            try:
                super().run_application()
            finally:
                if websocket:
                    self.close_connection = True
                body = self.wsgi_input
                if (body is not None and not body.chunked_input
                        and (body.content_length or 0) - body.position > DISCARD_MAX):
                    self.close_connection = True
                    body.content_length = body.position  # nothing for gevent to discard

    return Handler


class _ErrorLog:
    """gevent's error log (one write per failed request) into the logging system."""

    def write(self, text: str) -> None:
        text = text.rstrip()
        if text:
            log.warning("%s", text)

    def flush(self) -> None:
        """Nothing buffered."""
