"""Socket.IO: `/feed` takes reports from feeds, `/live` pushes committed changes to screens."""

from __future__ import annotations

import logging
import re
import threading
import time

from flask import current_app
from flask_socketio import Namespace, SocketIO, join_room
from socketio import packet
from socketio.exceptions import ConnectionRefusedError

from command.errors import DomainError
from command.feeds import service as feeds_service
from command.incidents import service as incidents_service
from command.orders import service as orders_service
from command.users.principal import Principal, incident_rooms
from command.web.auth import principal_from

log = logging.getLogger(__name__)

socketio = SocketIO()

LIVE_CATCHUP_MAX = 1000
EMIT_CHUNK = 1000


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


class FeedNamespace(Namespace):
    """Feeds connect with auth={"token": T} and emit `report` (one object or a list).

    The token is checked at connect; the ingest writer checks again, inside the transaction
    that stores the reports, that the feed is still active (so a revoked token stops at once).
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self._feeds: dict[str, feeds_service.Feed] = {}  # sid -> feed

    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            with core().read() as session:
                self._feeds[_sid()] = feeds_service.authenticate(session, token)
        except DomainError as err:
            raise ConnectionRefusedError(err.message) from None

    def on_disconnect(self, reason=None):
        self._feeds.pop(_sid(), None)

    def on_report(self, body=None):
        feed = self._feeds.get(_sid())
        if feed is None:
            return {"ok": False, "error": {"code": "unauthorized", "message": "not connected"}}
        try:
            outcomes = core().ingest.submit(feed, body)
        except DomainError as err:
            return {"ok": False, "error": err.as_dict()}
        acks = [o.as_ack() for o in outcomes]
        return acks if isinstance(body, list) else acks[0]


class UserNamespace(Namespace):
    """A namespace for signed-in users (auth={"token": …} or the login session).

    Connecting joins the rooms of the user's scope, so each user is sent only what they may see.
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self._users: dict[str, Principal] = {}

    def on_connect(self, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        principal = principal_from(token)
        if principal is None:
            raise ConnectionRefusedError("sign in or connect with auth={'token': <user token>}")
        self._users[_sid()] = principal
        for room in principal.live_rooms():
            join_room(room)
        self.connected(principal)

    def connected(self, principal: Principal) -> None:
        """Called once the user has joined their rooms."""

    def on_disconnect(self, reason=None):
        self._users.pop(_sid(), None)


class LiveNamespace(UserNamespace):
    """Screens receive `incidents`, `orders` and `alerts` (lists in ascending seq) and ask
    `since` to fill gaps in incidents."""

    def on_since(self, data=None):
        try:
            seq = int((data or {}).get("seq", 0))
        except (TypeError, ValueError, AttributeError):
            return {"error": {"code": "invalid_field", "message": "seq must be an integer",
                              "field": "seq"}}
        c = core()
        with c.read() as session:
            return incidents_service.since(session, max(seq, 0), limit=LIVE_CATCHUP_MAX,
                                           locator=c.units.current(session),
                                           principal=self._users.get(_sid()))


def _sid() -> str:
    from flask import request

    return request.sid


class IncidentTargets:
    """Rooms for incident changes: the county, its township and grid, and the units holding an
    order node of it (one query per batch)."""

    def __init__(self, ordered_units) -> None:
        self._ordered_units = ordered_units  # incident ids -> {id: (unit codes)}
        self._ordered: dict[str, tuple[str, ...]] = {}

    def prepare(self, batch: list[dict]) -> None:
        self._ordered = self._ordered_units([item["id"] for item in batch])

    def __call__(self, item: dict) -> list[str]:
        township, grid = item.get("township"), item.get("grid")
        return incident_rooms(township and township["code"], grid and grid["code"],
                              self._ordered.get(item["id"], ()))


def node_targets(parent_of):
    """Rooms for an order-node change: the county, its unit and the unit above."""
    def rooms(item: dict) -> list[str]:
        code = item["target"]["code"]
        return ["county", f"unit:{code}"] + [f"unit:{p}" for p in [parent_of(code)] if p]
    return rooms


def alert_targets(item: dict) -> list[str]:
    """Rooms for an alert change: the county and the units concerned."""
    return ["county"] + [f"unit:{code}" for code in item.get("units", [])]


class Broadcaster:
    """Collects published changes of one topic and emits them in seq order, a batch per tick.

    Each item goes to the rooms `rooms(item)` names, on every (namespace, event) given: a user
    is sent only what their scope lets them see. Idle, a change goes out at once; under load at
    most one message per flush window.
    """

    def __init__(self, sio: SocketIO, flush_seconds: float, rooms, outlets) -> None:
        self._sio = sio
        self._flush = flush_seconds
        self._rooms = rooms
        self._outlets = outlets  # [(namespace, event)]
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broadcaster", daemon=True)
        self._thread.start()

    def __call__(self, items: list[dict]) -> None:
        with self._lock:
            self._pending.extend(items)
        self._wake.set()

    def _run(self) -> None:
        last = 0.0
        while True:
            self._wake.wait()
            pause = last + self._flush - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._wake.clear()
            last = time.monotonic()
            with self._lock:
                batch, self._pending = self._pending, []
            batch.sort(key=lambda item: item["seq"])
            if hasattr(self._rooms, "prepare"):
                try:
                    self._rooms.prepare(batch)
                except Exception:  # fewer rooms this time; screens catch up with `since`
                    log.exception("looking up rooms failed")
            by_room: dict[str, list[dict]] = {}
            for item in batch:
                for room in self._rooms(item):
                    by_room.setdefault(room, []).append(item)
            for room, items in by_room.items():
                for start in range(0, len(items), EMIT_CHUNK):
                    for namespace, event in self._outlets:
                        try:
                            self._sio.emit(event, items[start:start + EMIT_CHUNK],
                                           namespace=namespace, to=room)
                        except Exception:  # screens fill the gap from the database
                            log.exception("emitting %s to %s failed", event, namespace)


class FieldNamespace(UserNamespace):
    """Grid workers, townships and departments: their open order nodes, then every change.

    On connect the unit's open nodes arrive as one `orders` event; each later new or changed
    node arrives at once. A client emits `delivered` with {"ids": [...]} when it has them, which
    moves issued nodes to `delivered`. Nothing is lost while offline: the open nodes are sent
    again on every connect.
    """

    def connected(self, principal: Principal) -> None:
        c = core()
        with c.read() as session:
            nodes = orders_service.visible_nodes(session, by=principal, open_only=True,
                                                 locator=c.units.current(session))
        self.emit("orders", nodes, room=_sid())

    def on_delivered(self, data=None):
        principal = self._users.get(_sid())
        ids = (data or {}).get("ids") if isinstance(data, dict) else None
        if principal is None or not isinstance(ids, list):
            return {"ok": False, "error": {"code": "invalid_field", "message": "ids: a list"}}
        c = core()
        changes = orders_service.Changes()
        with c.write() as session, session.begin():
            done = orders_service.deliver(session, node_ids=[str(i) for i in ids[:1000]],
                                          by=principal, now=c.clock.now(),
                                          locator=c.units.current(session), changes=changes)
        changes.publish(c.bus)
        return {"ok": True, "delivered": done}


_HEADER = re.compile(r"^(\d)(?:\d+-)?(?:(/[^,]*),)?(\d+)?")


def install_size_guard(sio: SocketIO, max_bytes: int) -> None:
    """Answer an over-size event with a `too_large` ack instead of dropping the connection.

    Engine.IO accepts messages up to twice `max_bytes` (beyond that it closes the connection);
    this guard refuses anything over `max_bytes` before it is parsed.
    """
    server = sio.server
    original = server._handle_eio_message

    def guarded(eio_sid, data):
        if isinstance(data, str) and len(data) * 3 > max_bytes and len(data.encode()) > max_bytes:
            match = _HEADER.match(data)
            kind, namespace, ack_id = match.groups() if match else (None, None, None)
            if kind == str(packet.EVENT) and ack_id is not None:
                error = {"ok": False, "error": {
                    "code": "too_large",
                    "message": f"message is larger than the maximum of {max_bytes} bytes"}}
                server._send_packet(eio_sid, server.packet_class(
                    packet.ACK, namespace=namespace or "/", data=[error], id=int(ack_id)))
            return None
        return original(eio_sid, data)

    server.eio.on("message", guarded)


def register(sio: SocketIO) -> None:
    """Bind the namespaces."""
    sio.on_namespace(FeedNamespace("/feed"))
    sio.on_namespace(LiveNamespace("/live"))
    sio.on_namespace(FieldNamespace("/field"))


def subscribe(sio: SocketIO, bus, flush_seconds: float, parent_of, ordered_units) -> None:
    """Carry the bus topics to the screens: incidents to /live, order nodes to /live and
    /field, alerts to /live."""
    bus.subscribe("incidents", Broadcaster(sio, flush_seconds, IncidentTargets(ordered_units),
                                           [("/live", "incidents")]))
    bus.subscribe("orders", Broadcaster(sio, flush_seconds, node_targets(parent_of),
                                        [("/live", "orders"), ("/field", "orders")]))
    bus.subscribe("alerts", Broadcaster(sio, flush_seconds, alert_targets,
                                        [("/live", "alerts")]))
