"""Shared fixtures: real Redis and PostgreSQL (the running ones or throwaway ones), real servers."""

from __future__ import annotations

import os
import uuid

import pytest

from tests import servers

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# the services the tests use are named by CMDCENTER_REDIS_URL / CMDCENTER_DATABASE_URL when set;
# the variables themselves are taken out of every test's environment (tests pass URLs explicitly)
SERVICE_URLS = {name: os.environ.get(name) for name in ("CMDCENTER_REDIS_URL",
                                                         "CMDCENTER_DATABASE_URL")}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CMDCENTER_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A Redis URL: CMDCENTER_REDIS_URL, the local one, or a throwaway server."""
    url = SERVICE_URLS["CMDCENTER_REDIS_URL"] or DEFAULT_REDIS
    if servers.redis_available(url):
        yield url
        return
    url, proc = servers.start_throwaway_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory):
    """A PostgreSQL URL: CMDCENTER_DATABASE_URL, the local `test` database, or a throwaway."""
    url = SERVICE_URLS["CMDCENTER_DATABASE_URL"] or DEFAULT_POSTGRES
    if servers.postgres_available(url):
        yield url
        return
    url, stop = servers.start_throwaway_postgres(tmp_path_factory.mktemp("pg"))
    yield url
    stop()


@pytest.fixture
def postgres_url(postgres_server_url):
    """A fresh, empty schema on the PostgreSQL server for one test (dropped afterwards)."""
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(postgres_server_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    engine = sa.create_engine(postgres_server_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture
def server_env():
    """Environment for server subprocesses: SQLite in the data dir, in-process bus."""
    return {"CMDCENTER_LOG": "WARNING"}


@pytest.fixture
def server(tmp_path, server_env):
    """A real `cmdcenter serve` on a free port with a fresh SQLite data dir and the demo county."""
    srv = servers.Server(tmp_path / "data", servers.free_port(), server_env).start()
    yield srv
    srv.stop()
