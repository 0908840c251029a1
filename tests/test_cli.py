"""The command line as a newcomer meets it: tokens, listings, one-line errors, boundary import."""

from __future__ import annotations

import json
import socket

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box

from tests import servers
from tests.test_wire import feed_client, report


def run(data_dir, *args, check=True, env=None):
    return servers.cli(*args, data_dir=data_dir, check=check, env=env)


def test_data_dir_before_or_after_the_command(tmp_path):
    servers.cli("--data-dir", str(tmp_path / "a"), "units", "list")
    servers.cli("units", "list", "--data-dir", str(tmp_path / "b"))
    servers.cli("units", "list", env={"CMDCENTER_DATA_DIR": str(tmp_path / "c")})
    assert all((tmp_path / d / "cmdcenter.sqlite3").exists() for d in "abc")


def test_feeds_add_prints_the_token_last_and_json(tmp_path):
    out = run(tmp_path, "feeds", "add", "青石镇平台", "--unit", "DEMO-T03")
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("cf_") and len(token) > 30
    js = json.loads(run(tmp_path, "feeds", "add", "b", "--unit", "DEMO-T03", "--json").stdout)
    assert js["name"] == "b" and js["unit"] == "DEMO-T03" and js["token"].startswith("cf_")
    listed = json.loads(run(tmp_path, "feeds", "list", "--json").stdout)
    assert [f["name"] for f in listed] == ["青石镇平台", "b"]
    assert token not in run(tmp_path, "feeds", "list").stdout  # only hashes are stored
    run(tmp_path, "feeds", "revoke", "b")
    assert json.loads(run(tmp_path, "feeds", "list", "--json").stdout)[1]["revoked"] is True


@pytest.mark.parametrize("args, needle", [
    (("feeds", "add", "x", "--unit", "NOPE"), "no unit with code 'NOPE'"),
    (("feeds", "revoke", "ghost"), "no feed named 'ghost'"),
    (("boundaries", "import", "/nonexistent.geojson", "--level", "township", "--code-field",
      "c", "--name-field", "n"), "nonexistent.geojson"),
])
def test_mistakes_get_one_clear_line(tmp_path, args, needle):
    out = run(tmp_path, *args, check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmdcenter: error:") and needle in lines[0]
    assert "Traceback" not in out.stderr


def test_duplicate_feed_name_is_one_line(tmp_path):
    run(tmp_path, "feeds", "add", "a", "--unit", "DEMO-T01")
    out = run(tmp_path, "feeds", "add", "a", "--unit", "DEMO-T01", check=False)
    assert out.returncode == 2 and "already exists" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("env, needle", [
    ({"CMDCENTER_DATABASE_URL": "mysql://x"}, "postgresql:// or sqlite://"),
    ({"CMDCENTER_DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/x"}, "cannot use the database"),
    ({"CMDCENTER_PORT": "eighty"}, "must be a number"),
])
def test_bad_configuration_is_one_line(tmp_path, env, needle):
    out = run(tmp_path, "units", "list", check=False, env=env)
    assert out.returncode == 2 and needle in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "secret" not in out.stderr


def test_unwritable_data_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run(blocker / "sub", "units", "list", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_port_taken_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = servers.cli("serve", "--port", str(port), data_dir=tmp_path, check=False)
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def _townships(tmp_path):
    """Two townships side by side (WGS-84) around the demo county's area."""
    gdf = gpd.GeoDataFrame(
        {"XZQDM": ["330100001", "330100002"], "XZQMC": ["东镇", "西镇"]},
        geometry=[box(120.0, 29.9, 120.2, 30.2), box(120.2, 29.9, 120.45, 30.2)], crs="EPSG:4326")
    path = tmp_path / "towns.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


def test_import_replaces_demo_relocates_and_disables_feeds(tmp_path, server_env):
    srv = servers.Server(tmp_path / "data", servers.free_port(), server_env).start()
    try:
        token = srv.add_feed("old", unit="DEMO-T01")
        feed = feed_client(srv.url, token)
        acks = feed.call("report", [report(1, lon=120.1, lat=30.0), report(2, lon=120.3, lat=30.1)],
                         namespace="/feed")
        feed.disconnect()
        before = srv.get("/api/v1/incidents?since=0").json()["last_seq"]
        out = run(srv.data_dir, "boundaries", "import", str(_townships(tmp_path)), "--level",
                  "township", "--code-field", "XZQDM", "--name-field", "XZQMC")
        assert "imported 2 units" in out.stdout and "demo county was replaced" in out.stdout
        assert "re-located 2 stored incidents" in out.stdout
        assert "feed 'old' disabled" in out.stdout
        units = srv.get("/api/v1/units").json()
        assert sorted(u["code"] for u in units if u["level"] != "dept") == ["330100001",
                                                                            "330100002"]
        changed = srv.get(f"/api/v1/incidents?since={before}").json()["items"]
        by_source = {i["source_id"]: i for i in changed}
        assert by_source["w-1"]["township"] == {"code": "330100001", "name": "东镇"}
        assert by_source["w-2"]["township"] == {"code": "330100002", "name": "西镇"}
        assert {i["id"] for i in changed} == {a["incident"]["id"] for a in acks}
        # the server uses the new units for new reports at once
        import socketio
        with pytest.raises(socketio.exceptions.ConnectionError):
            feed_client(srv.url, token)
        run(srv.data_dir, "feeds", "bind", "old", "--unit", "330100002")
        feed = feed_client(srv.url, token)
        ack = feed.call("report", report(3, lon=120.3, lat=30.1), namespace="/feed")
        feed.disconnect()
        assert ack["incident"]["township"]["code"] == "330100002"
    finally:
        srv.stop()


def test_bad_file_changes_nothing(tmp_path):
    good = gpd.GeoDataFrame({"code": ["1", "1"], "name": ["甲", "乙"]},
                            geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs="EPSG:4326")
    path = tmp_path / "dup.geojson"
    good.to_file(path, driver="GeoJSON")
    before = run(tmp_path, "units", "list", "--json").stdout
    out = run(tmp_path, "boundaries", "import", str(path), "--level", "township",
              "--code-field", "code", "--name-field", "name", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert run(tmp_path, "units", "list", "--json").stdout == before
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [ {')
    out = run(tmp_path, "boundaries", "import", str(broken), "--level", "township",
              "--code-field", "code", "--name-field", "name", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert run(tmp_path, "units", "list", "--json").stdout == before


def test_import_repairs_and_reports(tmp_path):
    bowtie = Polygon([(120.0, 29.9), (120.2, 30.1), (120.2, 29.9), (120.0, 30.1)])
    gdf = gpd.GeoDataFrame({"code": ["T1", "T2"], "name": ["甲镇", "乙镇"]},
                           geometry=[bowtie, box(120.2, 29.9, 120.4, 30.1)], crs="EPSG:4326")
    path = tmp_path / "t.gpkg"
    gdf.to_file(path, layer="towns", driver="GPKG")
    out = run(tmp_path, "boundaries", "import", str(path), "--layer", "towns", "--level",
              "township", "--code-field", "code", "--name-field", "name")
    assert "repaired 1 invalid polygons: T1" in out.stdout
    refused = run(tmp_path, "boundaries", "import", str(path), "--layer", "towns", "--level",
                  "township", "--code-field", "code", "--name-field", "name", "--no-repair",
                  check=False)
    assert refused.returncode == 2 and "T1" in refused.stderr
