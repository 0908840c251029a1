"""Backup and restore: a running server and a stream of reports during the backup, on SQLite and
PostgreSQL; the key rules; every refusal before anything is written; an older schema migrated."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import tarfile
import threading
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from command import config, keys
from command.config import ConfigError
from command.core import Core
from command.db import alembic_config, set_meta
from command.ops import backup as backup_mod
from command.ops import pgtools
from command.ops import restore as restore_mod
from command.users import sheet
from tests import servers
from tests.test_auth import login
from tests.test_field_reports import jpeg
from tests.test_matters_wire import ID_NUMBER
from tests.test_wire import feed_client, report


class Stream:
    """A feed sending one report after another, remembering when each was acknowledged."""

    def __init__(self, url: str, token: str) -> None:
        self.client = feed_client(url, token)
        self.acked: list[tuple[float, str]] = []  # (monotonic time of the ack, incident id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            ack = self.client.call("report", report(f"s{n}", title=f"备份期间 {n}"),
                                   namespace="/feed", timeout=30)
            assert ack["ok"], ack
            self.acked.append((time.monotonic(), ack["incident"]["id"]))
            time.sleep(0.01)

    def acked_before(self, moment: float) -> set[str]:
        return {i for at, i in list(self.acked) if at < moment}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.client.disconnect()


def prepare(server, tmp_path) -> dict:
    """A deployment with a key, incidents, an order, an alert, imported users and files."""
    c = Core(config.load(data_dir=server.data_dir,
                         database_url=server.env.get("CMDCENTER_DATABASE_URL")))
    try:  # the key as the app stores it: key file in the data dir, fingerprint in the database
        _ring, fingerprint = keys.open_keyring(env_secret=None, data_dir=server.data_dir,
                                               stored_fingerprint=None)
        with c.write() as s, s.begin():
            set_meta(s, keys.FINGERPRINT_META, fingerprint)
    finally:
        c.close()
    token = server.add_feed("城关平台")
    leader = server.add_user("bk-leader", "leader")
    people = tmp_path / "people.csv"
    sheet.write(people, ["登录名", "角色", "单位", "姓名", "手机"],
                [["bk-grid", "网格员", "DEMO-T01-G01", "网格员甲", "13700001111"]])
    servers.cli("users", "import", str(people), "--passwords", str(tmp_path / "pw.csv"),
                env=server.env, data_dir=server.data_dir)
    with open(tmp_path / "pw.csv", encoding="utf-8-sig") as handle:
        first_password = list(csv.DictReader(handle))[0]["初始密码"]
    feed = feed_client(server.url, token)
    acks = feed.call("report", [report(1, severity=1, title="Ⅰ级 突发"), report(2)],
                     namespace="/feed")
    feed.disconnect()
    r = requests.post(server.url + "/api/v1/orders", timeout=10,
                      headers={"Authorization": f"Bearer {leader}"},
                      json={"incident_id": acks[1]["incident"]["id"], "targets": ["DEMO-T01"],
                            "instruction": "到场处置"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while not server.get("/api/v1/alerts?status=all").json():  # the severity alert
        assert time.monotonic() < deadline
        time.sleep(0.3)
    # a matter at the window (its party's ID number encrypted and indexed with the key) and a
    # report from a phone with a photo (its bytes in the database)
    clerk = server.add_user("bk-clerk", "desk")
    matter = requests.post(server.url + "/api/v1/matters", timeout=30,
                           headers={"Authorization": f"Bearer {clerk}"},
                           json={"type": "dispute", "title": "劳资纠纷", "grid": "DEMO-T01-G01",
                                 "category": "labour",
                                 "parties": [{"role": "applicant", "kind": "person",
                                              "name": "张三", "id_number": ID_NUMBER,
                                              "phone": "13812341234"}]})
    assert matter.ok, matter.text
    phone = server.add_user("bk-phone", "grid", "DEMO-T01-G01")
    picture = jpeg((320, 240))
    sha = hashlib.sha256(picture).hexdigest()
    report_id = str(uuid.uuid4())
    put = requests.put(f"{server.url}/api/v1/field/reports/{report_id}/photos/{sha}",
                       data=picture, timeout=30, headers={
                           "Authorization": f"Bearer {phone}",
                           "Content-Range": f"bytes 0-{len(picture) - 1}/{len(picture)}"})
    assert put.status_code == 201, put.text
    field = requests.post(server.url + "/api/v1/field/reports", timeout=30,
                          headers={"Authorization": f"Bearer {phone}"},
                          json={"id": report_id, "type": "emergency", "title": "路面塌陷",
                                "occurred_at": report(0)["occurred_at"], "grid": "DEMO-T01-G01",
                                "position": "grid"})
    assert field.ok, field.text
    files = {"reports/情况报告-2026-12-04.html": "<h1>情况报告</h1>".encode(),
             "photos/2026/12/p1.jpg": os.urandom(200_000)}
    for name, data in files.items():
        (server.data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (server.data_dir / name).write_bytes(data)
    return {"token": token, "files": files, "fingerprint": fingerprint, "clerk": clerk,
            "case_no": matter.json()["case_no"], "phone": phone, "photo": sha,
            "field": field.json()["incident"]["id"],
            "first_password": first_password,
            "orders": _orders(server), "alerts": _alerts(server)}


def _orders(server) -> list:
    return sorted((n["id"], n["state"]) for n in server.get("/api/v1/orders").json())


def _alerts(server) -> list:
    return sorted((a["id"], a["rule"], a["status"]) for a in
                  server.get("/api/v1/alerts?status=all").json())


def backup_during_stream(server, state, out, *extra) -> tuple[set[str], str]:
    """Run `cmdcenter backup` while a feed streams reports; the ids acked before it started."""
    stream = Stream(server.url, state["token"])
    try:
        while len(stream.acked) < 20:
            time.sleep(0.05)
        started = time.monotonic()
        before = stream.acked_before(started)
        made = servers.cli("backup", "--out", str(out), *extra, env=server.env,
                           data_dir=server.data_dir)
        after = len(stream.acked)
    finally:
        stream.stop()
    assert after > len(before)  # reports kept coming during the backup
    assert made.stdout.strip().splitlines()[-1] == str(out.resolve())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return before, made.stdout


def check_restored(restored, state, acked: set[str]) -> None:
    """The restored deployment serves what the original did."""
    got = {i["id"] for i in restored.get("/api/v1/incidents?since=0&limit=5000").json()["items"]}
    assert acked <= got and len(acked) >= 20
    assert _orders(restored) == state["orders"]
    # the alerts raised before (the stream's own reports may have raised more since)
    assert set(state["alerts"]) <= set(_alerts(restored)) and state["alerts"]
    signed = login(restored, "bk-grid", state["first_password"])
    assert "修改初始密码" in signed.last.text  # the first sign-in is still due after a restore
    for name, data in state["files"].items():
        assert (restored.data_dir / name).read_bytes() == data
    # the matter: found by its party's ID number (the key came back) and readable
    found = requests.post(restored.url + "/api/v1/matters/search", json={"id_number": ID_NUMBER},
                          headers={"Authorization": f"Bearer {state['clerk']}"}, timeout=30)
    assert [m["case_no"] for m in found.json()["items"]] == [state["case_no"]]
    detail = requests.get(f"{restored.url}/api/v1/matters/{state['case_no']}", timeout=30,
                          headers={"Authorization": f"Bearer {state['clerk']}"}).json()
    assert [p["name"] for p in detail["parties"]] == ["张三"]
    # the phone's report with its photo, byte for byte
    photos = restored.get(f"/api/v1/incidents/{state['field']}").json()["photos"]
    assert [p["sha256"] for p in photos] == [state["photo"]]
    got = requests.get(restored.url + photos[0]["url"], timeout=30,
                       headers={"Authorization": f"Bearer {state['phone']}"})
    assert hashlib.sha256(got.content).hexdigest() == state["photo"]


def members(archive) -> list[str]:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.getnames()


def test_sqlite_backup_while_serving_then_restore(tmp_path, server):
    state = prepare(server, tmp_path)
    archive = tmp_path / "backup.tar.gz"
    started = time.monotonic()
    acked, out = backup_during_stream(server, state, archive)
    print(f"backup (SQLite, under a stream of reports): {time.monotonic() - started:.1f} s, "
          f"{archive.stat().st_size / 1e6:.1f} MB")
    assert "not in the archive" in out
    names = members(archive)
    assert backup_mod.SQLITE_MEMBER in names and names[-1] == "manifest.json"
    assert backup_mod.KEY_MEMBER not in names and not any("secret.key" in n for n in names)
    assert not any(n.endswith((".sqlite3-wal", ".sqlite3-shm", ".lock")) for n in names)
    manifest = restore_mod.read_manifest(archive)
    assert manifest["database"]["schema_revision"] == "0009"
    assert manifest["key"] == {"fingerprint": state["fingerprint"], "included": False}
    assert manifest["version"] and manifest["created_at"]
    server.stop()

    # a wrong key is refused before anything is written
    wrong = tmp_path / "wrong.key"
    wrong.write_text("w" * 64)
    target = tmp_path / "restored"
    refused = servers.cli("restore", str(archive), "--key-file", str(wrong), data_dir=target,
                          check=False)
    assert refused.returncode == 2 and "is not the key of this backup" in refused.stderr
    assert not target.exists()
    # no key: the restore completes and says what stays unreadable
    keyless = servers.cli("restore", str(archive), data_dir=tmp_path / "keyless").stdout
    assert "ID numbers and party phones stay unreadable until the key is put in place" in keyless
    assert not (tmp_path / "keyless" / keys.KEY_FILE).exists()
    # the deployment's key file, kept elsewhere as the README says
    started = time.monotonic()
    done = servers.cli("restore", str(archive), "--key-file",
                       str(server.data_dir / keys.KEY_FILE), data_dir=target)
    print(f"restore (SQLite): {time.monotonic() - started:.1f} s")
    key = target / keys.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == (server.data_dir / keys.KEY_FILE).read_text()
    assert "came from" in done.stdout
    restored = servers.Server(target, servers.free_port(), server.env)
    restored._duty_token = server.duty_token  # the same users, tokens included
    restored.start()
    try:
        check_restored(restored, state, acked)
    finally:
        restored.stop()
    # a second restore into the same place overwrites nothing
    again = servers.cli("restore", str(archive), data_dir=target, check=False)
    assert again.returncode == 2 and "is not empty" in again.stderr


@pytest.fixture
def new_database(postgres_server_url):
    """Fresh, empty PostgreSQL databases (schema public), dropped afterwards."""
    made = []
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")

    def make() -> str:
        name = "bk_" + uuid.uuid4().hex[:12]
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        made.append(name)
        return sa.engine.make_url(postgres_server_url).set(database=name).render_as_string(
            hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.mark.postgres
def test_postgres_backup_while_serving_then_restore(tmp_path, new_database):
    source_url, target_url = new_database(), new_database()
    env = {"CMDCENTER_DATABASE_URL": source_url}
    server = servers.Server(tmp_path / "source", servers.free_port(), env).start()
    try:
        state = prepare(server, tmp_path)
        archive = tmp_path / "pg.tar.gz"
        acked, out = backup_during_stream(server, state, archive, "--include-key")
        assert "IN the archive" in out
        names = members(archive)
        assert backup_mod.PG_MEMBER in names and backup_mod.KEY_MEMBER in names
        manifest = restore_mod.read_manifest(archive)
        assert manifest["database"]["kind"] == "postgresql"
        assert manifest["database"]["schema"] == "public"
        assert manifest["key"] == {"fingerprint": state["fingerprint"], "included": True}
        duty = server.duty_token
    finally:
        server.stop()

    target = tmp_path / "restored"
    # a key in the environment that is not the archive's: refused, nothing written
    refused = servers.cli("restore", str(archive), data_dir=target, check=False,
                          env={"CMDCENTER_DATABASE_URL": target_url,
                               "CMDCENTER_SECRET_KEY": "k" * 40})
    assert refused.returncode == 2 and "is not the key of this backup" in refused.stderr
    assert not target.exists()
    # into a database of another kind: refused
    other = servers.cli("restore", str(archive), data_dir=target, check=False)
    assert other.returncode == 2 and "holds a postgresql database" in other.stderr
    # into a database that is not empty: refused (the source is one)
    busy = servers.cli("restore", str(archive), data_dir=target, check=False,
                       env={"CMDCENTER_DATABASE_URL": source_url})
    assert busy.returncode == 2 and "not empty" in busy.stderr and not target.exists()

    started = time.monotonic()
    done = servers.cli("restore", str(archive), data_dir=target,
                       env={"CMDCENTER_DATABASE_URL": target_url})
    print(f"restore (PostgreSQL): {time.monotonic() - started:.1f} s")
    assert "came from the archive" in done.stdout
    assert (target / keys.KEY_FILE).read_text().strip() == \
        (tmp_path / "source" / keys.KEY_FILE).read_text().strip()
    restored = servers.Server(target, servers.free_port(), {"CMDCENTER_DATABASE_URL": target_url})
    restored._duty_token = duty
    restored.start()
    try:
        check_restored(restored, state, acked)
    finally:
        restored.stop()


# --- refusals and migration, in-process on SQLite ------------------------------------------------

@pytest.fixture
def archive(tmp_path):
    """A small backup of a fresh deployment with one data file."""
    settings = config.load(data_dir=tmp_path / "src")
    Core(settings).close()
    (tmp_path / "src" / "reports").mkdir()
    (tmp_path / "src" / "reports" / "a.md").write_text("# 简报\n")
    made = backup_mod.backup(settings, tmp_path / "a.tar.gz", include_key=False,
                             now=_now())
    return made.path


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _rewrite(source, target, change):
    """A copy of an archive with `change(name, data) -> data` applied to its members."""
    with tarfile.open(source, "r:gz") as tar, tarfile.open(target, "w:gz") as out:
        for member in tar:
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return target


def test_refusals_come_before_anything_is_written(tmp_path, archive):
    target = config.load(data_dir=tmp_path / "target")

    def refused(path, settings=target, match=""):
        with pytest.raises(ConfigError, match=match):
            restore_mod.restore(settings, path)
        assert not (tmp_path / "target").exists()

    damaged = _rewrite(archive, tmp_path / "damaged.tar.gz",
                       lambda n, d: d.replace(b"# ", b"#!") if n.endswith("a.md") else d)
    refused(damaged, match="checksum mismatch")

    def newer(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["database"]["schema_revision"] = "9999"
        return json.dumps(manifest).encode()

    refused(_rewrite(archive, tmp_path / "newer.tar.gz", newer), match="unknown to this")
    extra = tmp_path / "extra.tar.gz"
    _rewrite(archive, extra, lambda n, d: d)
    with tarfile.open(extra, "r:gz") as tar:
        kept = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(extra, "w:gz") as tar:
        for member, data in kept:
            tar.addfile(member, io.BytesIO(data))
        info = tarfile.TarInfo("data/../../evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    refused(extra, match="does not list")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "note.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        restore_mod.restore(target, archive)
    assert [p.name for p in (tmp_path / "target").iterdir()] == ["note.txt"]


def test_an_older_schema_is_migrated(tmp_path):
    from alembic import command as alembic_command

    data = tmp_path / "old"
    data.mkdir()
    url = f"sqlite:///{data / 'cmdcenter.sqlite3'}"
    alembic_command.upgrade(alembic_config(url), "0004")  # what an older release left
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (name, role, created_at, failed_logins) "
                             "VALUES ('old-duty', 'duty', '2026-01-01 00:00:00', 0)")
    engine.dispose()
    made = backup_mod.backup(config.load(data_dir=data), tmp_path / "old.tar.gz",
                             include_key=False, now=_now())
    assert made.manifest["database"]["schema_revision"] == "0004"
    done = restore_mod.restore(config.load(data_dir=tmp_path / "new"), made.path)
    assert done.migrated_from == "0004" and done.counts["users"] == 1
    assert any("migrated from revision 0004" in line for line in done.lines())
    core = Core(config.load(data_dir=tmp_path / "new"))
    try:
        from command.users import service

        with core.read() as s:
            user = service.get(s, name="old-duty")
        assert user.display_name is None and user.must_change_password is False
    finally:
        core.close()


def test_pg_dump_too_old_for_the_server_is_refused_clearly():
    tools = pgtools.installed("pg_dump")
    assert tools, "pg_dump is not installed"
    newest = tools[-1].major
    assert pgtools.choose("pg_dump", newest).major == newest
    with pytest.raises(ConfigError) as info:
        pgtools.choose("pg_dump", newest + 1)
    message = str(info.value)
    assert f"needs pg_dump {newest + 1} or newer" in message
    assert f"postgresql-client-{newest + 1}" in message and tools[-1].path in message


def test_the_nightly_timer_runs_a_valid_backup_command():
    import configparser
    import shlex
    from pathlib import Path

    from command import cli

    root = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(root / "cmdcenter-backup.service")
    env = dict(v.split("=", 1) for k, v in unit.items("Service") if k == "Environment")
    env = {"BACKUP_DIR": "/var/backups/cmdcenter"} | env
    command = shlex.split(unit["Service"]["ExecStart"].replace("${BACKUP_DIR}",
                                                               env["BACKUP_DIR"]))
    assert Path(command[0]).name == "cmdcenter"
    args = cli._parser().parse_args(command[1:])
    assert args.func is cli.cmd_backup and args.out == "/var/backups/cmdcenter"
    assert not args.include_key
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.optionxform = str
    timer.read(root / "cmdcenter-backup.timer")
    assert timer["Timer"]["Unit"] == "cmdcenter-backup.service"
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
