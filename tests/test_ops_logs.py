"""Logs: one line per event, JSON lines with the request id, and no personal data in any line."""

from __future__ import annotations

import io
import json
import logging

import pytest
import requests

from command.config import ConfigError
from command.ops import logs
from command.users import sheet
from tests import pii, servers
from tests.test_auth import login
from tests.test_wire import feed_client, report

FIELDS = ("time", "level", "event", "request_id", "user", "feed", "path", "status",
          "duration_ms")


def json_lines(server) -> list[dict]:
    lines = [line for line in server.log.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_json_lines_carry_the_request_id_and_no_personal_data(server, tmp_path):
    # servers of the test session log JSON lines at INFO (tests/servers.py)
    duty = server.duty_token
    r = server.get("/api/v1/incidents?since=0", headers={"X-Request-ID": "req-0042"})
    assert r.ok and r.headers["X-Request-ID"] == "req-0042"
    made = requests.get(server.url + "/healthz", headers={"X-Request-ID": "bad id\x7f"})
    made_id = made.headers["X-Request-ID"]
    assert made_id and made_id != "bad id\x7f" and len(made_id) == 32

    # personal data goes in through every door: reports, a conflict, a wrong field, users
    token = server.add_feed("白沙镇平台", "DEMO-T06")
    feed = feed_client(server.url, token)
    name, phone = pii.CANARIES[0], pii.CANARY_PHONE
    sent = report(1, reporter=name, phone=phone,
                  description=f"{pii.CANARIES[1]}反映，身份证 {pii.CANARY_ID}，电话 {phone}")
    (ack,) = feed.call("report", [sent], namespace="/feed")
    assert ack["ok"] and ack["incident"]["phone"] == "139****4321"
    conflict = feed.call("report", report(1, reporter=pii.CANARIES[2], phone="13900001111"),
                         namespace="/feed")
    assert conflict["error"]["code"] == "conflict"
    bad = requests.post(server.url + "/api/v1/reports", timeout=10,
                        headers={"Authorization": f"Bearer {token}"},
                        json=report(2, phone=f"{phone}x", reporter=name))
    assert bad.status_code == 422
    assert requests.post(server.url + "/api/v1/reports", timeout=10, data=f'{{"phone": "{phone}',
                         headers={"Authorization": f"Bearer {token}"}).status_code == 400
    assert login(server, pii.CANARIES[3], phone).last.status_code == 401
    people = tmp_path / "people.csv"
    sheet.write(people, ["登录名", "角色", "单位", "姓名", "手机"],
                [["wg-canary", "网格员", "DEMO-T01-G01", pii.CANARIES[3], phone]])
    servers.cli("users", "import", str(people), "--passwords", str(tmp_path / "pw.csv"),
                env=server.env, data_dir=server.data_dir)
    assert requests.get(server.url + "/api/v1/incidents", timeout=10,
                        params={"q": phone}, headers={"Authorization": f"Bearer {duty}"}).ok
    feed.disconnect()
    server.stop()  # every line written

    lines = json_lines(server)
    assert lines and all(set(FIELDS) <= set(line) for line in lines)
    tagged = [line for line in lines if line["request_id"] == "req-0042"]
    assert len(tagged) == 1
    (line,) = tagged
    assert (line["path"], line["status"], line["user"]) == ("/api/v1/incidents", 200,
                                                            f"duty-{server.port}")
    assert isinstance(line["duration_ms"], float) and line["level"] == "INFO"
    assert [x["path"] for x in lines if x["request_id"] == made_id] == ["/healthz"]
    reports = [x for x in lines if x["event"] == "report /feed"]
    assert [x["status"] for x in reports] == [200, 409] and \
        {x["feed"] for x in reports} == {"白沙镇平台"}
    connect = next(x for x in lines if x["event"] == "connect /feed")
    assert connect["request_id"] and connect["feed"] == "白沙镇平台"
    rest = [x for x in lines if x["path"] == "/api/v1/reports"]
    assert [x["status"] for x in rest] == [422, 400] and {x["feed"] for x in rest} == {"白沙镇平台"}
    # the whole log, JSON or not (the console's own lines share the file), has no personal data
    everything = server.log.read_text().splitlines()
    assert pii.findings(everything) == []


def test_a_line_per_event_even_with_a_traceback():
    stream = io.StringIO()
    log = logging.getLogger("cmdcenter.test.logs")  # not the root: pytest keeps its handlers
    log.propagate = False
    logs.configure("INFO", "text", stream=stream, logger=log)
    try:
        try:
            raise ValueError(f"bad value for 13812341234\nsecond line {pii.CANARY_ID}")
        except ValueError:
            log.exception("failed for %s", "13912345678", extra={"status": 500})
        text = stream.getvalue()
        assert text.count("\n") == 1 and "Traceback" in text and "status=500" in text
        assert pii.findings([text]) == [] and "139****5678" in text

        stream.truncate(0)
        stream.seek(0)
        logs.configure("INFO", "json", stream=stream, logger=log)
        token = logs.context.set({"request_id": "r-1", "user": "duty", "path": "/x"})
        try:
            log.warning("plain")
        finally:
            logs.context.reset(token)
        (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
        assert {k: line[k] for k in ("level", "event", "request_id", "user", "path", "feed")} == \
            {"level": "WARNING", "event": "plain", "request_id": "r-1", "user": "duty",
             "path": "/x", "feed": None}
    finally:
        log.handlers.clear()


def test_an_unknown_log_format_is_one_line(tmp_path):
    with pytest.raises(ConfigError):
        logs.configure("INFO", "xml")
    out = servers.cli("units", "list", data_dir=tmp_path, check=False,
                      env={"CMDCENTER_LOG_FORMAT": "xml"})
    assert out.returncode == 2 and out.stderr.strip() == (
        "cmdcenter: error: CMDCENTER_LOG_FORMAT must be text or json, got 'xml'")
