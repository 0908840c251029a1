"""Hostile input at both doors: every request gets a documented answer and nothing else happens.

Generated input (Hypothesis) is thrown at a real server: reports over REST and Socket.IO, every
REST route with every method, raw HTTP framings (chunked, truncated, lying Content-Length, wrong
Content-Type) and raw Socket.IO packets. Asserted throughout: no 5xx, every REST refusal in the
error shape `{"ok": false, "error": {"code", "message"}}`, every Socket.IO event that asks for an
ack gets one, the connection and the server stay healthy; at the end, every stored incident is a
valid one and each stored report was acknowledged as stored.

The example budget is fixed (`CMDCENTER_FUZZ_EXAMPLES`, default 60 per property) so `make test`
stays bounded; `make fuzz` runs the same properties with thousands.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command.incidents.types import TYPE_LABELS
from command.payload import MAX_DEPTH
from tests import servers
from tests.raw_socketio import RawSocketIO

EXAMPLES = int(os.environ.get("CMDCENTER_FUZZ_EXAMPLES", "60"))
MAX_BYTES = 256 * 1024  # the server under test takes messages up to this size
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("CMDCENTER_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
NOW_ISO = "2026-11-26T09:30:00+08:00"

NASTY = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\u202e右到左", "\ufeff", "é", "𝕏",
         "🙂" * 60, "<script>alert(1)</script>", "' OR 1=1 --", "a" * 201, "中" * 5001, "\r\n\t",
         "null", "NaN", "1e999", "%00", "../../etc/passwd", "\\u0000", "٣", "+861380000000"]
texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(texts, kids, max_size=4)), max_leaves=12)


def good_report() -> dict:
    return {"id": f"h-{uuid.uuid4().hex}", "type": "dispute", "occurred_at": NOW_ISO,
            "lon": 120.2, "lat": 30.05, "title": "邻里纠纷", "severity": 4}


@st.composite
def reportish(draw) -> dict:
    """A report with some fields kept, some dropped and some replaced by anything."""
    report = good_report()
    for key in list(report) + ["grid", "people", "phone", "reporter", "description", "crs"]:
        action = draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        if action == "drop":
            report.pop(key, None)
        elif action == "replace":
            report[key] = draw(json_values)
    return report


bodies = st.one_of(reportish(), st.lists(reportish(), max_size=5), json_values)


# --- the server and its clients -----------------------------------------------------------

class Target:
    """The server under test, its tokens, and what it acknowledged as stored."""

    def __init__(self, srv: servers.Server) -> None:
        self.srv = srv
        self.url = srv.url
        self.feed_token = srv.add_feed("hostile-feed")
        self.tokens = {"none": None, "feed": self.feed_token, "duty": srv.duty_token,
                       "leader": srv.add_user("hostile-leader", "leader"),
                       "township": srv.add_user("hostile-town", "township", "DEMO-T01"),
                       "grid": srv.add_user("hostile-grid", "grid", "DEMO-T01-G01"),
                       "garbage": "x" * 40}
        self.stored: set[str] = set()  # incident ids acked as newly stored
        self.ids = self._things()  # real ids for path parameters, so fuzzing gets past 404

    def _things(self) -> list[str]:
        """An incident with an order to a township and one of its grids: their ids."""
        r = requests.post(self.url + "/api/v1/reports", json=good_report(), timeout=30,
                          headers={"Authorization": f"Bearer {self.feed_token}"})
        self.note_acks(r.json())
        incident = r.json()["incident"]["id"]
        r = requests.post(self.url + "/api/v1/orders", timeout=30,
                          headers={"Authorization": f"Bearer {self.tokens['leader']}"},
                          json={"incident_id": incident, "targets": ["DEMO-T01", "DEMO-T01-G01"],
                                "instruction": "核实"})
        assert r.ok, r.text
        nodes = [n["id"] for n in r.json()["nodes"]]
        r = requests.post(self.url + "/api/v1/reports", json={**good_report(), "severity": 1},
                          headers={"Authorization": f"Bearer {self.feed_token}"}, timeout=30)
        self.note_acks(r.json())
        deadline = time.monotonic() + 30
        while not (alerts := self.srv.get("/api/v1/alerts").json()) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert alerts, "the Ⅰ级 report raised no alert"
        return [incident, *nodes, alerts[0]["id"]]

    def note_acks(self, answer) -> None:
        for ack in answer if isinstance(answer, list) else [answer]:
            if isinstance(ack, dict) and ack.get("ok") and not ack.get("duplicate"):
                self.stored.add(ack["incident"]["id"])

    def healthy(self) -> None:
        assert self.srv.proc.poll() is None, "the server process died"
        assert requests.get(self.url + "/healthz", timeout=10).ok


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(request, tmp_path_factory):
    """The server on SQLite, then on PostgreSQL (which refuses NUL in text: it must never
    get one)."""
    env = {"CMDCENTER_LOG": "WARNING", "CMDCENTER_MAX_MESSAGE_BYTES": str(MAX_BYTES)}
    drop = None
    if request.param == "postgres":
        env["CMDCENTER_DATABASE_URL"], drop = _pg_schema(
            request.getfixturevalue("postgres_server_url"))
    srv = servers.Server(tmp_path_factory.mktemp("hostile") / "data", servers.free_port(),
                         env).start()
    yield Target(srv)
    srv.stop()
    if drop:
        drop()


def _pg_schema(server_url: str):
    import sqlalchemy as sa

    schema = "h_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(server_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")

    def drop():
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options=-csearch_path%3D{schema}", drop


def assert_error_shape(body) -> None:
    assert isinstance(body, dict) and body.get("ok") is False, body
    error = body.get("error")
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str), body


def assert_ack_shape(ack) -> None:
    """A report's ack: stored/duplicate with its incident, or an error object."""
    if isinstance(ack, dict) and ack.get("ok") is True:
        assert isinstance(ack.get("incident"), dict) and "duplicate" in ack, ack
    else:
        assert_error_shape(ack)


def check_report_answer(target: Target, body, answer) -> None:
    """One ack for one report, a list in order for a list, or one error for a list refused
    whole (before any item was read)."""
    if isinstance(body, list) and isinstance(answer, list):
        assert len(answer) == len(body), answer
        for ack in answer:
            assert_ack_shape(ack)
    else:
        assert_ack_shape(answer)
    target.note_acks(answer)


# --- the reproductions ------------------------------------------------------------

@pytest.mark.parametrize("levels", [1000, 5000, 100_000])
def test_deep_json_over_rest_is_invalid_json(target, levels):
    r = requests.post(target.url + "/api/v1/reports", data="[" * levels + "]" * levels,
                      headers={"Authorization": f"Bearer {target.feed_token}"}, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"
    assert str(MAX_DEPTH) in r.json()["error"]["message"]


def test_title_nested_50000_deep_is_invalid_json(target):
    body = json.dumps(good_report())[:-1] + ', "title": ' + "[" * 50_000 + "]" * 50_000 + "}"
    r = requests.post(target.url + "/api/v1/reports", data=body, timeout=30,
                      headers={"Authorization": f"Bearer {target.feed_token}"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")


def test_depth_at_the_limit_is_read(target):
    """A body exactly MAX_DEPTH deep is decoded (and then judged as reports)."""
    body = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    r = requests.post(target.url + "/api/v1/reports", data=body, timeout=30,
                      headers={"Authorization": f"Bearer {target.feed_token}"})
    assert r.status_code == 200
    assert r.json()[0]["error"]["code"] == "invalid_field"


def _chunked(parts):
    for part in parts:
        yield part


def test_chunked_body_over_the_limit_is_too_large_and_stores_nothing(target):
    before = _count(target)
    many = [good_report() for _ in range(MAX_BYTES // 150)]
    data = json.dumps(many).encode()
    assert len(data) > MAX_BYTES
    headers = {"Authorization": f"Bearer {target.feed_token}"}
    r = requests.post(target.url + "/api/v1/reports", timeout=30, headers=headers,
                      data=_chunked([data[i:i + 8192] for i in range(0, len(data), 8192)]))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    r = requests.post(target.url + "/api/v1/reports", data=data, headers=headers, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert _count(target) == before
    small = [good_report()]
    r = requests.post(target.url + "/api/v1/reports", headers=headers, timeout=30,
                      data=_chunked([json.dumps(small).encode()]))
    assert r.status_code == 200 and r.json()[0]["ok"]
    target.note_acks(r.json())


def _count(target: Target) -> int:
    return len(_all_incidents(target))


def _all_incidents(target: Target) -> list[dict]:
    items, since = [], 0
    while True:
        page = target.srv.get(f"/api/v1/incidents?since={since}&limit=5000").json()
        items += page["items"]
        if not page["items"]:
            return items
        since = page["last_seq"]


def test_socketio_reproductions_are_acked_and_the_connection_kept(target):
    client = RawSocketIO(target.url)
    try:
        assert client.connect("/feed", {"token": target.feed_token}).startswith("40/feed")
        deep = "[" * 1000 + "]" * 1000
        cases = {
            1: (f'42/feed,1["report",{deep}]', "invalid_json"),
            2: ('42/feed,2["report",1,2,3]', "invalid_field"),
            3: ('42/feed,3["report",' + "[" * 100_000 + "]" * 100_000 + "]", "invalid_json"),
            4: ('42/feed,4["report",{"id":"a"', "invalid_json"),
            5: ("42/feed,5[]", "invalid_json"),
            6: ('42/feed,6[{"a":1},2]', "invalid_json"),
            7: ('42/feed,7["no-such-event",{}]', "not_found"),
            8: ('42/feed,8["report",NaN]', "invalid_field"),
            9: ('42/live,9["since",{}]', "unauthorized"),
        }
        for ack_id, (text, code) in cases.items():
            client.send(text)
            namespace = text[2:text.index(",")]
            ack = client.ack(namespace, ack_id)
            assert ack is not None, f"no ack for {text[:60]}"
            assert ack[0]["error"]["code"] == code, ack
        client.send('42/feed,99["report",' + json.dumps(good_report()) + "]")
        ack = client.ack("/feed", 99)
        assert ack[0]["ok"], ack
        target.note_acks(ack[0])
    finally:
        client.close()


def test_connect_that_cannot_be_decoded_gets_a_connect_error(target):
    client = RawSocketIO(target.url)
    try:
        client.send("40/feed," + "[" * 1000 + "]" * 1000)
        answer = client.wait_for(lambda f: f.startswith("44/feed"), 10)
        assert answer is not None and "nested" in answer
        assert client.connect("/feed", {"token": target.feed_token}).startswith("40/feed")
    finally:
        client.close()


# --- properties ---------------------------------------------------------------------------

@FUZZ
@given(body=bodies)
def test_reports_over_rest(target, body):
    r = requests.post(target.url + "/api/v1/reports", data=json.dumps(body), timeout=30,
                      headers={"Authorization": f"Bearer {target.feed_token}"})
    assert r.status_code < 500, r.text
    assert isinstance(r.json(), list) == (isinstance(body, list) and r.status_code == 200)
    check_report_answer(target, body, r.json())


@pytest.fixture(scope="module")
def feed_socket(target):
    import socketio

    client = socketio.Client(reconnection=False)
    client.connect(target.url, namespaces=["/feed"], auth={"token": target.feed_token},
                   transports=["websocket"], wait_timeout=10)
    yield client
    client.disconnect()


@FUZZ
@given(body=bodies)
def test_reports_over_socketio(target, feed_socket, body):
    answer = feed_socket.call("report", body, namespace="/feed", timeout=30)
    check_report_answer(target, body, answer)


ROUTES_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from command import config
from command.web.app import create_app
with tempfile.TemporaryDirectory() as tmp:
    app, core = create_app(config.load(data_dir=str(Path(tmp) / "data")), start_background=False)
    rules = sorted({(m, r.rule) for r in app.server.url_map.iter_rules()
                    for m in r.methods - {"HEAD", "OPTIONS"}
                    if not r.rule.startswith(("/assets", "/_dash-component-suites"))})
    core.close()
print(json.dumps(rules))
"""


@pytest.fixture(scope="module")
def routes() -> list[tuple[str, str]]:
    """Every (method, rule) the server has, read from the app itself (in a subprocess)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ROUTES_SCRIPT], capture_output=True, text=True,
                         check=True, cwd=servers.ROOT, timeout=120)
    found = [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]
    assert ("POST", "/api/v1/reports") in found
    return found


URL_TEXT = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(
    ["\x00", "%00", "..", "a" * 300, "DEMO-T01", "0", "-1", "9" * 40, "𝕏", " "]))
QUERY = st.dictionaries(st.sampled_from(["since", "limit", "status", "open", "geometry", "period",
                                         "date", "format", "incident", "span", "days", "cell",
                                         "from", "to", "next", "q", "by", "category",
                                         "channel", "township"]),
                        URL_TEXT, max_size=4)
FIELDS = ["to", "note", "rating", "merged_into", "into", "incident_id", "targets", "instruction",
          "priority", "ack_minutes", "due_minutes", "result", "reason", "id", "title", "type"]
RAW_BODIES = st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                       st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)
                       .map(lambda v: json.dumps(v).encode()),
                       st.binary(max_size=200),
                       st.sampled_from([b"", b"{", b"[" * 5000, b"\xff\xfe", b'{"a":NaN}',
                                        b'{"note":"\\u0000"}', b'{"targets":[{}]}',
                                        b'{"ack_minutes":1e308}', b'{"due_minutes":' +
                                        b"9" * 30 + b"}"]))


ACTIONS = ["ack", "progress", "complete", "return", "cancel", "reissue", "deliver", "dismiss",
           "merge", "forward", "transition"]


@FUZZ
@given(data=st.data(),
       query=QUERY, body=RAW_BODIES,
       who=st.sampled_from(["none", "feed", "duty", "leader", "township", "grid", "garbage"]),
       content_type=st.sampled_from(["application/json", "text/plain", None,
                                     "application/x-www-form-urlencoded", "multipart/form-data"]))
def test_every_route(target, routes, data, query, body, who, content_type):
    method, rule = data.draw(st.sampled_from(routes))
    params = data.draw(st.lists(st.one_of(URL_TEXT, st.sampled_from(target.ids + ACTIONS)),
                                min_size=3, max_size=3))
    filled = iter(params)
    path = re.sub(r"<[^>]+>", lambda _m: quote(next(filled, "x"), safe=""), rule)
    headers = {}
    if target.tokens[who]:
        headers["Authorization"] = f"Bearer {target.tokens[who]}"
    if content_type:
        headers["Content-Type"] = content_type
    r = requests.request(method, target.url + path, params=query, headers=headers,
                         data=body if method not in ("GET",) else None, timeout=60,
                         allow_redirects=False)
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    if path.startswith(("/api/", "/_dash-update", "/healthz")) and r.status_code >= 400:
        assert_error_shape(r.json())


def _raw_http(target: Target, request: bytes, *, half_close: bool = False):
    """Send raw bytes (the request says Connection: close); the answer's status and body
    (None, b"" when the server closed without answering)."""
    with socket.create_connection(("127.0.0.1", target.srv.port), timeout=20) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413) and closed
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else None), data.partition(b"\r\n\r\n")[2]


@st.composite
def framings(draw):
    body = draw(st.one_of(st.just(json.dumps([good_report()]).encode()), RAW_BODIES))
    kind = draw(st.sampled_from(["chunked", "bad-chunk", "short", "long", "none", "oversize"]))
    head = [b"POST /api/v1/reports HTTP/1.1", b"Host: 127.0.0.1",
            b"Authorization: Bearer " + draw(st.sampled_from(["feed", "garbage"])).encode(),
            b"Content-Type: " + draw(st.sampled_from([b"application/json", b"text/plain",
                                                      b"application/octet-stream"]))]
    half_close = False
    if kind == "chunked":
        size = draw(st.integers(1, 64))
        parts = [body[i:i + size] for i in range(0, len(body), size)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        head.append(b"Transfer-Encoding: chunked")
    elif kind == "bad-chunk":
        payload = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        head.append(b"Transfer-Encoding: chunked")
    elif kind == "short":  # Content-Length promises more than comes
        payload = body
        head.append(b"Content-Length: %d" % (len(body) + draw(st.integers(1, 1000))))
        half_close = True
    elif kind == "long":  # more comes than Content-Length says
        payload = body + b"GARBAGE" * 3
        head.append(b"Content-Length: %d" % len(body))
    elif kind == "oversize":
        payload = b""
        head.append(b"Content-Length: %d" % (MAX_BYTES * 4))
    else:
        payload = body
    head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + payload, half_close


@FUZZ
@given(framing=framings())
def test_framing(target, framing):
    request, half_close = framing
    request = request.replace(b"Bearer feed", b"Bearer " + target.feed_token.encode())
    status, body = _raw_http(target, request, half_close=half_close)
    assert status is None or status < 500, status
    if status is not None and status >= 400:
        assert_error_shape(json.loads(body))
    if status == 200:
        target.note_acks(json.loads(body))


@pytest.fixture(scope="module")
def raw_socket(target):
    client = RawSocketIO(target.url)
    assert client.connect("/feed", {"token": target.feed_token}).startswith("40/feed")
    assert client.connect("/live", {"token": target.tokens["duty"]}).startswith("40/live")
    yield client
    client.close()


_HEADER = re.compile(r"^4([25])(?:(/[^,]*),)?(\d+)?")


@st.composite
def packets(draw):
    namespace = draw(st.sampled_from(["/feed", "/live", "/field", "/", "/nope"]))
    ack_id = draw(st.integers(0, 10**6))
    event = draw(st.one_of(st.sampled_from(["report", "since", "delivered", "nope", ""]),
                           json_values))
    args = draw(st.lists(st.one_of(bodies, json_values), max_size=3))
    text = draw(st.one_of(
        st.just(json.dumps([event, *args])),
        st.text(max_size=60),
        st.sampled_from(["[", "[" * 2000, "{}", "null", "[1e999]", '["report",NaN]', ""])))
    prefix = f"42{namespace}," if namespace != "/" else "42"
    return f"{prefix}{ack_id}{text}"


@FUZZ
@given(text=packets())
def test_socketio_packets(target, raw_socket, text):
    match = _HEADER.match(text)
    namespace, ack_id = match.group(2) or "/", match.group(3)
    raw_socket.send(text)
    if ack_id is not None:
        ack = raw_socket.ack(namespace, int(ack_id), timeout=15)
        assert ack is not None, f"no ack for {text[:80]!r}"
        assert isinstance(ack, list) and len(ack) == 1, ack
        answer = ack[0]
        if isinstance(answer, dict) and answer.get("ok") is False:
            assert_error_shape(answer)
        if namespace == "/feed":
            target.note_acks(answer)
    assert raw_socket.connected


# --- afterwards ---------------------------------------------------------------------------

def test_zz_server_healthy_and_nothing_invalid_stored(target, raw_socket):
    """Runs last in this module: every stored incident is valid and was acked as stored."""
    target.healthy()
    raw_socket.send('42/live,7["since",{"seq":0}]')
    assert raw_socket.ack("/live", 7) is not None
    stored = _all_incidents(target)
    for incident in stored:
        assert incident["type"] in TYPE_LABELS
        assert 1 <= len(incident["title"]) <= 200 and incident["title"] == incident["title"].strip()
        assert len(incident["description"]) <= 5000
        assert incident["severity"] in (1, 2, 3, 4)
        assert -180 <= incident["lon"] <= 180 and -90 <= incident["lat"] <= 90
        assert 1 <= len(incident["source_id"]) <= 128
        for text in (incident["title"], incident["description"], incident["source_id"],
                     incident["reporter"] or "", incident["phone"] or ""):
            assert "\x00" not in text and not re.search("[\ud800-\udfff]", text)
    assert {i["id"] for i in stored} == target.stored
