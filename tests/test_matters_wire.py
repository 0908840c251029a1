"""Matters over the wire: real server processes, real clients.

Case numbers stay unique when two processes on one PostgreSQL register at once; masking holds
on every door (REST answers, /live pushes); the key: a process without it answers 503 where it
is needed, a process with another key refuses to start; an ID number never reaches a URL or a
log line.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

from command import keys
from tests import servers

ID_NUMBER = "11010519491231002X"
PHONE = "13812341234"


def matter(i: int = 0, **change) -> dict:
    raw = {"type": "dispute", "title": f"劳资纠纷 {i}", "grid": "DEMO-T01-G01",
           "category": "labour",
           "parties": [{"role": "applicant", "kind": "person", "name": "张三",
                        "id_number": ID_NUMBER, "phone": PHONE}]}
    raw.update(change)
    return raw


def post(srv, token, path, body, **headers):
    return requests.post(srv.url + path, json=body, timeout=60,
                         headers={"Authorization": f"Bearer {token}", **headers})


@pytest.mark.postgres
def test_case_numbers_unique_under_concurrent_registration_on_two_processes(
        tmp_path, postgres_url):
    env = {"CMDCENTER_LOG": "WARNING", "CMDCENTER_DATABASE_URL": postgres_url,
           "CMDCENTER_SECRET_KEY": "s" * 40}
    first = servers.Server(tmp_path / "a", servers.free_port(), env).start()
    second = servers.Server(tmp_path / "b", servers.free_port(), env).start()
    try:
        token = first.add_user("clerk", "desk")
        per_server = 40

        def register(args):
            srv, i = args
            r = post(srv, token, "/api/v1/matters", matter(i))
            assert r.status_code == 200, r.text
            return r.json()["case_no"]
        jobs = [(srv, i) for i in range(per_server) for srv in (first, second)]
        with ThreadPoolExecutor(16) as pool:
            numbers = list(pool.map(register, jobs))
        assert len(set(numbers)) == len(numbers) == 2 * per_server
        counts = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
        assert counts == list(range(counts[0], counts[0] + len(counts)))  # none skipped
        assert all(re.fullmatch(r"DEMO-20\d\d-\d{6}", n) for n in numbers)
    finally:
        first.stop()
        second.stop()


def test_masked_on_every_door_and_never_in_the_log(server):
    clerk = server.add_user("clerk", "desk")
    live = socketio.Client(reconnection=False)
    pushed: list[dict] = []
    arrived = threading.Event()

    def on_incidents(items):
        pushed.extend(items)
        arrived.set()
    live.on("incidents", on_incidents, namespace="/live")
    live.connect(server.url, namespaces=["/live"], transports=["websocket"],
                 auth={"token": clerk})
    try:
        r = post(server, clerk, "/api/v1/matters", matter(), **{"Idempotency-Key": "a-1"})
        assert r.status_code == 200, r.text
        record = r.json()
        assert arrived.wait(10)
        again = post(server, clerk, "/api/v1/matters", matter(), **{"Idempotency-Key": "a-1"})
        assert again.json()["case_no"] == record["case_no"]
        case_no = record["case_no"]
        answers = [r.text, again.text, str(pushed),
                   server.get(f"/api/v1/matters/{case_no}").text,
                   server.get("/api/v1/incidents?since=0").text,
                   server.get("/api/v1/matters?since=0").text,
                   post(server, clerk, "/api/v1/matters/search", {"id_number": ID_NUMBER}).text,
                   requests.get(f"{server.url}/desk/receipt/{case_no}", timeout=30,
                                headers={"Authorization": f"Bearer {clerk}"}).text]
        for text in answers:
            assert ID_NUMBER not in text and PHONE not in text, text[:300]
        assert "110105********002X" in answers[3] and "138****1234" in answers[3]
        got = post(server, clerk, f"/api/v1/matters/{case_no}/reveal",
                   {"party": 0, "field": "id_number", "reason": "核对身份"})
        assert got.json()["value"] == ID_NUMBER
        leader = server.add_user("boss", "leader")
        refused = post(server, leader, f"/api/v1/matters/{case_no}/reveal",
                       {"party": 0, "field": "id_number", "reason": "看看"})
        assert refused.status_code == 403
        admin = server.add_user("root", "admin")
        trail = requests.get(f"{server.url}/api/v1/audit", params={"subject": case_no},
                             headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        assert [(a["by"], a["action"], a["field"]) for a in trail["items"]] == [
            ("clerk", "reveal", "id_number")]
        assert requests.get(f"{server.url}/api/v1/audit", params={"subject": case_no},
                            headers={"Authorization": f"Bearer {clerk}"},
                            timeout=30).status_code == 403
    finally:
        live.disconnect()
    log = server.log.read_text(errors="replace")
    assert ID_NUMBER not in log and PHONE not in log


def test_without_the_key_the_server_answers_503_and_another_key_is_refused(tmp_path):
    data = tmp_path / "data"
    srv = servers.Server(data, servers.free_port(), {"CMDCENTER_LOG": "WARNING"}).start()
    clerk = srv.add_user("clerk", "desk")
    assert post(srv, clerk, "/api/v1/matters", matter()).status_code == 200
    srv.stop()
    key = (data / keys.KEY_FILE).read_text()
    (data / keys.KEY_FILE).unlink()  # the key lost (or a second host without it)
    srv.start()
    try:
        r = post(srv, clerk, "/api/v1/matters", matter())
        assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")
        plain = matter(parties=[{"role": "applicant", "kind": "person", "name": "李四"}])
        ok = post(srv, clerk, "/api/v1/matters", plain)
        assert ok.status_code == 200
        case_no = ok.json()["case_no"]
        assert post(srv, clerk, "/api/v1/matters/search",
                    {"id_number": ID_NUMBER}).status_code == 503
        assert post(srv, clerk, "/api/v1/matters/search", {"q": "劳资"}).status_code == 200
        assert srv.get(f"/api/v1/matters/{case_no}").status_code == 200  # masked: no key needed
        assert not (data / keys.KEY_FILE).exists()  # a fingerprint is stored: none made anew
    finally:
        srv.stop()
    wrong = servers.cli("serve", "--port", str(servers.free_port()), data_dir=data, check=False,
                        env={"CMDCENTER_SECRET_KEY": "w" * 40})
    assert wrong.returncode == 2
    assert "not the key this database was written with" in wrong.stderr
    (data / keys.KEY_FILE).write_text(key)  # the key back: everything readable again
    srv.start()
    try:
        found = post(srv, clerk, "/api/v1/matters/search", {"id_number": ID_NUMBER})
        assert found.status_code == 200 and len(found.json()["items"]) == 1
    finally:
        srv.stop()
