"""1,500 accounts in one step: `cmdcenter users import` (all or nothing), export, first sign-in."""

from __future__ import annotations

import csv
import re
import stat

import requests
from openpyxl import Workbook, load_workbook

from command import config as config_mod
from command.core import Core
from command.users import flows, importer, service as users_service, sheet
from tests import servers
from tests.test_auth import login


def grid_codes(core) -> list[str]:
    with core.read() as session:
        from command.units import service as units_service

        return [u["code"] for u in units_service.get_all(session) if u["level"] == "grid"]


def make_core(data_dir) -> Core:
    return Core(config_mod.load(data_dir=data_dir))


def write_xlsx(path, header, rows):
    book = Workbook()
    sheet_ = book.active
    sheet_.append(header)
    for row in rows:
        sheet_.append(row)
    book.save(path)
    return path


def test_1500_lines_in_one_step_then_nothing_changes(tmp_path):
    data = tmp_path / "data"
    core = make_core(data)
    grids = grid_codes(core)
    core.close()
    # the grid office's sheet: its own numbering column, phones typed as numbers, any order
    rows = [[i + 1, 13800000000 + i, f"网格员{i:04d}", "网格员", grids[i % len(grids)],
             f"wg{i:04d}"] for i in range(1500)]
    book = write_xlsx(tmp_path / "网格员.xlsx", ["序号", "手机", "姓名", "角色", "单位", "登录名"], rows)
    # how long it takes is bench/users_import.py's to say (shared machines are noisy)
    out = servers.cli("users", "import", str(book), "--passwords", str(tmp_path / "pw.csv"),
                      data_dir=data)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "users import: 1500 new, 0 changed, 0 unchanged"
    assert "序号" in out.stdout  # the ignored column is named
    written = tmp_path / "pw.csv"
    assert lines[-1] == str(written.resolve())
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    with open(written, encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == flows.PASSWORD_HEADERS and len(table) == 1501
    assert len({row[4] for row in table[1:]}) == 1500  # every account its own password

    core = make_core(data)
    try:
        with core.read() as session:
            users = {u.name: u for u in users_service.get_all(session)}
            assert users_service.login(session, name="wg0007", password=table[8][4],
                                       now=core.clock.now()).must_change_password
        assert len(users) == 1500 and all(u.must_change_password for u in users.values())
        u = users["wg0007"]
        assert (u.role, u.unit_code, u.display_name, u.phone) == (
            "grid", grids[7], "网格员0007", "13800000007")
        assert u.as_dict()["phone"] == "138****0007"
    finally:
        core.close()

    again = servers.cli("users", "import", str(book), "--passwords", str(tmp_path / "pw2.csv"),
                        data_dir=data)
    assert again.stdout.splitlines()[0] == "users import: 0 new, 0 changed, 1500 unchanged"
    assert not (tmp_path / "pw2.csv").exists()
    listing = servers.cli("users", "list", data_dir=data).stdout
    assert "138****0007" in listing and "13800000007" not in listing


def test_a_file_with_mistakes_imports_nothing_and_names_each_line_and_column(tmp_path):
    data = tmp_path / "data"
    servers.cli("users", "add", "old-admin", "--role", "admin", "--password-stdin",
                data_dir=data, input="password-123\n")
    # English headers in another order, saved by a Chinese Excel as GB18030
    text = "\r\n".join([
        "Role,Name,Unit,Phone,姓名",
        "grid,zhang,DEMO-T01-G01,13912345678,张三",  # fine
        "grid,li,NOPE-G99,13912345679,李四",         # 3: unknown unit
        "chef,wang,,,王五",                          # 4: unknown role
        "township,zhao,,,",                          # 5: a township user without a unit
        "grid,zhang,DEMO-T01-G02,,",                 # 6: the same login name again
        "duty,qian,DEMO-T01,1234,",                  # 7: a county role with a unit, a bad phone
        "dept,sun,,,",                               # 8: a department user without a department
    ]) + "\r\n"
    path = tmp_path / "users.csv"
    path.write_bytes(text.encode("gb18030"))
    out = servers.cli("users", "import", str(path), data_dir=data, check=False)
    assert out.returncode == 2
    errors = out.stderr.strip().splitlines()
    assert errors[-1] == ("cmdcenter: error: 7 mistake(s) in users.csv: nothing was imported")
    found = {(int(m.group(1)), m.group(2)) for line in errors[:-1]
             if (m := re.match(r"users\.csv: line (\d+), column ([^:]+):", line))}
    assert found == {(3, "Unit"), (4, "Role"), (5, "Unit"), (6, "Name"), (7, "Unit"),
                     (7, "Phone"), (8, "部门/dept")}, errors
    assert "1234" not in out.stderr  # a phone, even a wrong one, is not echoed in full
    listed = servers.cli("users", "list", "--json", data_dir=data).stdout
    assert [u["name"] for u in __import__("json").loads(listed)] == ["old-admin"]
    assert not list(tmp_path.glob("cmdcenter-passwords-*"))


def test_labels_names_desk_and_departments_and_export_round_trip(tmp_path):
    core = make_core(tmp_path / "data")
    try:
        rows = [
            ["duty1", "值班员", "", "", "", ""],
            ["desk1", "窗口受理员", "", "", "受理员甲", "0571-88001234"],
            ["desk2", "desk", "演示县", "", "", ""],   # the county itself is no mistake
            ["t1", "乡镇（街道）工作人员", "青石镇", "", "", "+86 139 1111 2222"],
            ["t2", "乡镇工作人员", "DEMO-T06", "", "", ""],
            ["g1", "网格员", "东关社区网格", "", "", ""],
            ["g2", "grid", "城关街道/西关社区网格", "", "", ""],
            ["police1", "入驻部门", "", "公安", "", ""],
            ["police2", "dept", "", "dept.police", "", ""],
            ["court1", "入驻部门", "法院", "", "", ""],  # a department in the unit column
        ]
        book = write_xlsx(tmp_path / "in.xlsx", ["登录名", "角色", "单位", "部门", "姓名", "手机"],
                          rows)
        done, _plan, written = flows.import_users(core, book, passwords_path=tmp_path / "pw.csv")
        assert len(done.created) == 10 and written == tmp_path / "pw.csv"
        with core.read() as session:
            users = {u.name: u for u in users_service.get_all(session)}
        assert users["desk1"].role == "desk" and users["desk1"].unit_code is None
        assert users["desk1"].phone == "057188001234"
        assert users["t1"].unit_code == "DEMO-T05" and users["t1"].phone == "13911112222"
        assert users["g2"].unit_code == "DEMO-T01-G02"
        assert users["police1"].unit_code == users["police2"].unit_code == "dept.police"
        assert users["court1"].unit_code.startswith("dept.")

        exported = tmp_path / "out.xlsx"
        flows.export_users(core, exported)
        cells = [[c or "" for c in row] for row in
                 load_workbook(exported, read_only=True).active.iter_rows(values_only=True)]
        assert cells[0] == ["登录名", "角色", "单位", "部门", "姓名", "手机"]
        as_exported = {row[0]: row for row in cells[1:]}
        assert as_exported["t1"] == ["t1", "乡镇(街道)工作人员", "DEMO-T05", "", "", "139****2222"]
        assert as_exported["desk1"][1] == "窗口受理员"
        assert not any("****" not in row[5] for row in cells[1:] if row[5])
        # the export read back changes nothing (a masked phone stands for the stored one)
        again, _plan, none = flows.import_users(core, exported, passwords_path=tmp_path / "x.csv")
        assert (len(again.created), again.updated, again.unchanged, none) == (0, 0, 10, None)
        # a changed line updates that account only, its password untouched
        csv_path = tmp_path / "change.csv"
        sheet.write(csv_path, ["name", "role", "unit", "display_name"],
                    [["g1", "grid", "DEMO-T01-G03", "新名字"]])
        changed, _plan, _ = flows.import_users(core, csv_path, passwords_path=tmp_path / "y.csv")
        assert (len(changed.created), changed.updated) == (0, 1)
        with core.read() as session:
            g1 = users_service.get(session, name="g1")
        assert (g1.unit_code, g1.display_name, g1.phone) == ("DEMO-T01-G03", "新名字", None)
    finally:
        core.close()


def test_ambiguous_unit_name_asks_for_the_code(tmp_path):
    core = make_core(tmp_path / "data")
    try:
        with core.write() as session, session.begin():
            import sqlalchemy as sa

            from command.units.models import units

            session.execute(sa.update(units).where(units.c.code == "DEMO-T02-G01")
                            .values(name="东关社区网格"))  # now two grids share the name
        path = tmp_path / "a.csv"
        sheet.write(path, ["登录名", "角色", "单位"], [["g", "网格员", "东关社区网格"]])
        try:
            flows.import_users(core, path, passwords_path=tmp_path / "pw.csv")
        except importer.ImportRefused as refused:
            (error,) = refused.errors
            assert error.line == 2 and error.column == "单位"
            assert "DEMO-T01-G01" in error.message and "DEMO-T02-G01" in error.message
        else:
            raise AssertionError("an ambiguous name was taken")
    finally:
        core.close()


def test_first_sign_in_must_change_the_password(server, tmp_path):
    path = tmp_path / "u.csv"
    sheet.write(path, ["登录名", "角色", "单位"], [["newgrid", "网格员", "DEMO-T01-G01"]])
    out = servers.cli("users", "import", str(path), "--passwords", str(tmp_path / "pw.csv"),
                      env=server.env, data_dir=server.data_dir)
    with open(out.stdout.strip().splitlines()[-1], encoding="utf-8-sig") as handle:
        first = list(csv.DictReader(handle))[0]["初始密码"]

    s = login(server, "newgrid", first)
    assert s.last.status_code == 200 and "修改初始密码" in s.last.text
    assert s.get(f"{server.url}/api/v1/me").status_code == 401  # not signed in yet
    assert s.get(f"{server.url}/grid", allow_redirects=False).status_code == 302

    def change(password, again):
        form = s.get(f"{server.url}/login/password")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return s.post(f"{server.url}/login/password", allow_redirects=False,
                      data={"csrf_token": csrf, "password": password, "again": again,
                            "next": ""})

    assert "不一致" in change("new-password-1", "new-password-2").text
    assert "不能与初始密码相同" in change(first, first).text
    assert "至少 8" in change("short", "short").text
    done = change("new-password-1", "new-password-1")
    assert done.status_code == 302 and done.headers["Location"] == "/grid"
    assert s.get(f"{server.url}/api/v1/me").json()["name"] == "newgrid"

    assert login(server, "newgrid", first).last.status_code == 401  # the first one is spent
    again = login(server, "newgrid", "new-password-1")
    assert again.last.status_code == 302 and again.last.headers["Location"] == "/grid"
    # a pending change is not a session: a fresh client without it is sent to /login
    assert requests.get(f"{server.url}/login/password",
                        allow_redirects=False).headers["Location"] == "/login"
