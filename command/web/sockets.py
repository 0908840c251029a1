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

from command import payload
from command.errors import DomainError
from command.feeds import service as feeds_service
from command.incidents import service as incidents_service
from command.incidents.catchup import SharedSince
from command.orders import service as orders_service
from command.matters.categories import is_matter
from command.users.principal import MATTERS_ROOM, Principal, incident_rooms
from command.web import reqlog
from command.web.auth import principal_from

log = logging.getLogger(__name__)

socketio = SocketIO()

LIVE_CATCHUP_MAX = 1000
EMIT_CHUNK = 1000
WINDOW_PER_CONNECTION = 0.0001  # seconds of flush window per connection it sends to …
MAX_WINDOW = 0.25  # … up to this
FULL_BATCH = 100  # changes waiting that go out at once, window or not


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


class _InFlight:
    """Events being handled right now (a graceful shutdown lets them finish and answer)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._count -= 1

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no event is being handled (or `timeout`); say whether none is."""
        deadline = time.monotonic() + timeout
        while self._count > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._count <= 0


IN_FLIGHT = _InFlight()


def drain(c, timeout: float) -> None:
    """For a graceful shutdown: refuse new reports, store and answer what is queued, and let
    the events being handled finish (within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    c.drain_ingest(timeout)
    if not IN_FLIGHT.wait_idle(max(0.0, deadline - time.monotonic())):
        log.warning("shutting down with events still being handled")


class AckingNamespace(Namespace):
    """A namespace whose events each take one argument and always answer.

    An unknown event, a wrong number of arguments or a handler that fails still gets an error
    ack (a client waiting for one never waits for ever); the connection stays.
    """

    def trigger_event(self, event, *args):
        with IN_FLIGHT:
            return self._logged(event, *args)

    def _logged(self, event, *args):
        sid = args[0] if args else None
        environ = self.socketio.server.get_environ(sid, namespace=self.namespace) if sid else None
        with reqlog.socket_event(self.namespace, event, environ,
                                 lambda: self.identity(sid)) as outcome:
            try:
                outcome["ack"] = self._trigger(event, *args)
            except ConnectionRefusedError:
                outcome["refused"] = True
                raise
            return outcome["ack"]

    def identity(self, sid) -> tuple[str | None, str | None]:
        """(user name, feed name) of a connection, for its log lines."""
        return None, None

    def _trigger(self, event, *args):
        if event in ("connect", "disconnect"):
            return super().trigger_event(event, *args)
        handler = getattr(self, f"on_{event}", None)
        if handler is None:
            return _error_ack("not_found", f"no event {event!r} on {self.namespace}")
        sid, *given = args
        if len(given) > 1:
            return _error_ack("invalid_field", f"{event} takes one argument, got {len(given)}")
        try:
            return super().trigger_event(event, sid, *given)
        except Exception:  # noqa: BLE001 - logged; the client gets an answer, not silence
            log.exception("handling %s on %s failed", event, self.namespace)
            return _error_ack("unavailable", "the server could not handle this event; retry")


class FeedNamespace(AckingNamespace):
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

    def identity(self, sid):
        feed = self._feeds.get(sid)
        return None, feed.name if feed else None

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


class UserNamespace(AckingNamespace):
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

    def identity(self, sid):
        principal = self._users.get(sid)
        return principal.name if principal else None, None


class LiveNamespace(UserNamespace):
    """Screens receive `incidents`, `orders` and `alerts` (lists in ascending seq) and ask
    `since` to fill gaps in incidents."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        # after a restart every screen asks the same `since` at once: one answer for them all
        # (those who joined their rooms before it began)
        self.catchup = SharedSince(self._since)
        self._joined: dict[str, float] = {}

    def connected(self, principal: Principal) -> None:
        self._joined[_sid()] = self.catchup.clock()

    def on_disconnect(self, reason=None):
        self._joined.pop(_sid(), None)
        super().on_disconnect(reason)

    def on_since(self, data=None):
        seq = _seq((data or {}).get("seq", 0) if isinstance(data, (dict, type(None))) else None)
        if seq is None:
            return {"error": {"code": "invalid_field", "field": "seq",
                              "message": "seq must be an integer from 0 to 2^63-1"}}
        principal = self._users.get(_sid())
        if principal is None:
            return {"error": {"code": "unauthorized", "message": "connect with a user token"}}
        # county-wide readers all see the same changes; anyone else's scope is their own
        scope = "county" if principal.county_wide else principal
        return self.catchup((scope, seq, LIVE_CATCHUP_MAX), self._joined.get(_sid(), float("inf")))

    def _since(self, key) -> dict:
        scope, seq, limit = key
        c = core()
        with c.read() as session:
            return incidents_service.since(session, seq, limit=limit,
                                           locator=c.units.current(session),
                                           principal=None if scope == "county" else scope)


def _seq(value) -> int | None:
    """A sequence number from a client (a number or digits; below 0 counts as 0), else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isascii() \
            and value.strip().lstrip("-").isdigit() and len(value) < 25:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value > 2**63 - 1:
        return None
    return max(value, 0)


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
                              self._ordered.get(item["id"], ()), matter=is_matter(item["type"]),
                              reporter=item.get("reporter_user"))


class NodeTargets:
    """Rooms for an order-node change: the county, its unit and the unit above, and the
    window's clerks when the order is on a matter (one query per batch)."""

    def __init__(self, parent_of, matter_ids) -> None:
        self._parent_of = parent_of
        self._matter_ids = matter_ids  # incident ids -> the set of those that are matters
        self._matters: set[str] = set()

    def prepare(self, batch: list[dict]) -> None:
        self._matters = self._matter_ids([item["incident_id"] for item in batch])

    def __call__(self, item: dict) -> list[str]:
        code = item["target"]["code"]
        rooms = ["county", f"unit:{code}"] + [f"unit:{p}" for p in [self._parent_of(code)] if p]
        if item["incident_id"] in self._matters:
            rooms.append(MATTERS_ROOM)
        return rooms


class AlertTargets:
    """Rooms for an alert change: the county and the units concerned, and the window's clerks
    when every incident it names is a matter."""

    def __init__(self, matter_ids) -> None:
        self._matter_ids = matter_ids
        self._matters: set[str] = set()

    def prepare(self, batch: list[dict]) -> None:
        self._matters = self._matter_ids([i for item in batch for i in item.get("incidents", [])])

    def __call__(self, item: dict) -> list[str]:
        rooms = ["county"] + [f"unit:{code}" for code in item.get("units", [])]
        named = item.get("incidents") or []
        if named and all(i in self._matters for i in named):
            rooms.append(MATTERS_ROOM)
        return rooms


class Broadcaster:
    """Collects published changes of one topic and emits them in seq order, a batch per tick.

    Each item goes to the rooms `rooms(item)` names, on every (namespace, event) given: a user
    is sent only what their scope lets them see. Idle, a change goes out at once; under load at
    most one message per flush window, unless FULL_BATCH changes are waiting (a burst): the
    window exists to gather small changes into fewer frames, and waiting out the rest of it
    would only make a burst later.
    """

    def __init__(self, sio: SocketIO, flush_seconds: float, rooms, outlets,
                 on_sent=None) -> None:
        self._sio = sio
        self._flush = flush_seconds
        self._rooms = rooms
        self._outlets = outlets  # [(namespace, event)]
        self._on_sent = on_sent  # called with each item's seconds from arrival to emission
        self._pending: list[dict] = []
        self._arrivals: list[tuple[float, int]] = []  # (monotonic arrival, items) per call
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._full = threading.Event()  # FULL_BATCH changes are waiting
        self._thread = threading.Thread(target=self._run, name="broadcaster", daemon=True)
        self._thread.start()

    def __call__(self, items: list[dict]) -> None:
        with self._lock:
            self._pending.extend(items)
            self._arrivals.append((time.monotonic(), len(items)))
            full = len(self._pending) >= FULL_BATCH
        self._wake.set()
        if full:
            self._full.set()

    def _window(self) -> float:
        """The flush window: the configured one, widened with the connections this process
        sends these changes to (each message is one websocket frame per screen: 2,000 screens
        at 10 changes/s are 20,000 frames/s, beyond one process; 0.1 ms per connection keeps it
        near 10,000). Only the outlets' namespaces count: 1,500 phones on /field get no
        incident, and counting them held every /live change 150 ms for nothing."""
        server = self._sio.server
        if server is None:
            return self._flush
        rooms = server.manager.rooms  # namespace -> room -> members; room None: everyone
        connections = sum(len(rooms.get(namespace, {}).get(None, ()))
                          for namespace in {namespace for namespace, _ in self._outlets})
        return max(self._flush, min(MAX_WINDOW, connections * WINDOW_PER_CONNECTION))

    def _run(self) -> None:
        last = 0.0
        while True:
            self._wake.wait()
            pause = last + self._window() - time.monotonic()
            if pause > 0:
                self._full.wait(pause)
            self._wake.clear()
            self._full.clear()
            last = time.monotonic()
            with self._lock:
                batch, self._pending = self._pending, []
                arrivals, self._arrivals = self._arrivals, []
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
            rooms = self._sio.server.manager.rooms if self._sio.server is not None else {}
            for room, items in by_room.items():
                if not any(rooms.get(namespace, {}).get(room) for namespace, _ in self._outlets):
                    continue  # nobody here: a message is encoded per room, even an empty one
                for start in range(0, len(items), EMIT_CHUNK):
                    for namespace, event in self._outlets:
                        try:
                            self._sio.emit(event, items[start:start + EMIT_CHUNK],
                                           namespace=namespace, to=room)
                        except Exception:  # screens fill the gap from the database
                            log.exception("emitting %s to %s failed", event, namespace)
            if self._on_sent is not None:
                done = time.monotonic()
                try:
                    self._on_sent([done - at for at, count in arrivals for _ in range(count)])
                except Exception:
                    log.exception("recording delivery lag failed")


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
        if principal is None or not isinstance(ids, list) or not all(
                isinstance(i, str) and 0 < len(i) <= 64 and payload.clean_text(i) for i in ids):
            return {"ok": False, "error": {"code": "invalid_field", "field": "ids",
                                           "message": "ids: a list of order node ids"}}
        c = core()
        changes = orders_service.Changes()
        with c.write() as session, session.begin():
            done = orders_service.deliver(session, node_ids=ids[:1000],
                                          by=principal, now=c.clock.now(),
                                          locator=c.units.current(session), changes=changes)
        changes.publish(c.bus)
        return {"ok": True, "delivered": done}


_HEADER = re.compile(r"^(\d)(?:\d+-)?(?:(/[^,]*),)?(\d+)?")


def _error_ack(code: str, message: str, field: str | None = None) -> dict:
    return {"ok": False, "error": DomainError(code, message, field).as_dict()}


def install_guard(sio: SocketIO, max_bytes: int) -> None:
    """Answer every event that asks for an ack, whatever arrives; keep the connection.

    - over `max_bytes`: `too_large`, refused before it is parsed (Engine.IO accepts up to twice
      `max_bytes`; beyond that it closes the connection);
    - not decodable, or nested deeper than the payload limit: `invalid_json`;
    - an event that is not `[name, …]` with a string name: `invalid_json`;
    - a namespace the client has not joined: `unauthorized`.
    A CONNECT that cannot be decoded is answered with a connect error.
    """
    server = sio.server
    original = server._handle_eio_message
    handle_event = server._handle_event

    def answer(eio_sid, data, code: str, message: str) -> None:
        match = _HEADER.match(data) if isinstance(data, str) else None
        kind, namespace, ack_id = match.groups() if match else (None, None, None)
        if kind in (str(packet.EVENT), str(packet.BINARY_EVENT)) and ack_id is not None:
            server._send_packet(eio_sid, server.packet_class(
                packet.ACK, namespace=namespace or "/", data=[_error_ack(code, message)],
                id=int(ack_id)))
        elif kind == str(packet.CONNECT):
            server._send_packet(eio_sid, server.packet_class(
                packet.CONNECT_ERROR, namespace=namespace or "/", data={"message": message}))
        else:
            log.info("dropped an undecodable packet: %s", message)

    def guarded(eio_sid, data):
        if isinstance(data, str) and len(data) * 3 > max_bytes and len(data.encode()) > max_bytes:
            answer(eio_sid, data, "too_large",
                   f"message is larger than the maximum of {max_bytes} bytes")
            return None
        try:
            return original(eio_sid, data)
        except payload.PayloadError as exc:
            answer(eio_sid, data, "invalid_json", str(exc))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            answer(eio_sid, data, "invalid_json", f"not a Socket.IO packet we can read: {exc}")
        return None

    def checked_event(eio_sid, namespace, ack_id, data):
        def refuse(code, message):
            if ack_id is not None:
                server._send_packet(eio_sid, server.packet_class(
                    packet.ACK, namespace=namespace or "/", data=[_error_ack(code, message)],
                    id=ack_id))
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return refuse("invalid_json", 'an event is ["name", argument]: a list whose first '
                                          "item is the event's name")
        sid = server.manager.sid_from_eio_sid(eio_sid, namespace or "/")
        if sid is None or not server.manager.is_connected(sid, namespace or "/"):
            return refuse("unauthorized", f"not connected to namespace {namespace or '/'}")
        return handle_event(eio_sid, namespace, ack_id, data)

    server.eio.on("message", guarded)
    server._handle_event = checked_event


def mark_sids(sio: SocketIO, node: str | None) -> None:
    """Issue Engine.IO session ids as `<node>.<random>`.

    A client that starts with long-polling sends every later request with `?sid=…`; behind
    nginx with several processes, each request must reach the process holding that session.
    nginx maps the sid's prefix to its process (deploy/nginx/cmdcenter.conf), so stickiness
    needs neither cookies nor the client's address. The websocket upgrade carries the sid too.
    """
    if not node:
        return
    eio = sio.server.eio
    plain = eio.generate_id

    def generate_id() -> str:
        return f"{node}.{plain()}"

    eio.generate_id = generate_id


def connected_counts(sio: SocketIO) -> dict[str, int]:
    """Clients connected to this process, per namespace."""
    server = sio.server
    if server is None:
        return {}
    return {namespace: sum(1 for _ in server.manager.get_participants(namespace, None))
            for namespace in ("/feed", "/live", "/field")}


def register(sio: SocketIO) -> None:
    """Bind the namespaces."""
    sio.on_namespace(FeedNamespace("/feed"))
    sio.on_namespace(LiveNamespace("/live"))
    sio.on_namespace(FieldNamespace("/field"))


def subscribe(sio: SocketIO, bus, flush_seconds: float, parent_of, ordered_units,
              matter_ids, on_incidents_sent=None) -> None:
    """Carry the bus topics to the screens: incidents to /live, order nodes to /live and
    /field, alerts to /live. `on_incidents_sent` gets the seconds each incident change waited
    here (from reaching this process to its emission on /live)."""
    bus.subscribe("incidents", Broadcaster(sio, flush_seconds, IncidentTargets(ordered_units),
                                           [("/live", "incidents")], on_incidents_sent))
    bus.subscribe("orders", Broadcaster(sio, flush_seconds, NodeTargets(parent_of, matter_ids),
                                        [("/live", "orders"), ("/field", "orders")]))
    bus.subscribe("alerts", Broadcaster(sio, flush_seconds, AlertTargets(matter_ids),
                                        [("/live", "alerts")]))
