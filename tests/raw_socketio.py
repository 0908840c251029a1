"""A raw Socket.IO v5 client over one websocket: send any packet text, read the answers.

The python-socketio client only sends well-formed packets; hostile-input tests need to send
exactly the bytes an attacker or a broken township system would.
"""

from __future__ import annotations

import json
import time

import websocket


class RawSocketIO:
    """Engine.IO 4 / Socket.IO 5 spoken by hand: `connect(ns, auth)`, `send(text)`, `ack(id)`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(ws_url, timeout=timeout, skip_utf8_validation=True)
        opening = self.ws.recv()
        assert opening.startswith("0"), opening
        self.inbox: list[str] = []

    def _read(self, timeout: float) -> str | None:
        self.ws.settimeout(timeout)
        try:
            frame = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        if frame == "2":  # Engine.IO ping
            self.ws.send("3")
            return None
        return frame

    def send(self, text: str) -> None:
        """Send one Engine.IO message (a Socket.IO packet's text)."""
        self.ws.send(text)

    def wait_for(self, predicate, timeout: float = 10.0) -> str | None:
        """The first received packet that satisfies `predicate` (earlier ones are kept)."""
        for i, frame in enumerate(self.inbox):
            if predicate(frame):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self._read(max(0.05, deadline - time.monotonic()))
            if frame is None:
                continue
            if predicate(frame):
                return frame
            self.inbox.append(frame)
        return None

    def connect(self, namespace: str, auth: dict | None = None) -> str:
        """Join a namespace; return the answer packet (40… or 44…)."""
        self.send(f"40{namespace}," + json.dumps(auth or {}))
        answer = self.wait_for(lambda f: f.startswith((f"40{namespace}", f"44{namespace}")))
        assert answer is not None, f"no answer to connecting {namespace}"
        return answer

    def ack(self, namespace: str, ack_id: int, timeout: float = 10.0):
        """The decoded data of the ack with this id, or None when none came in time."""
        prefix = f"43{ack_id}[" if namespace in ("", "/") else f"43{namespace},{ack_id}["
        frame = self.wait_for(lambda f: f.startswith(prefix), timeout)
        return None if frame is None else json.loads(frame[len(prefix) - 1:])

    @property
    def connected(self) -> bool:
        return self.ws.connected

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already gone
            pass
