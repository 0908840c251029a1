"""Shared fixtures: real Redis and PostgreSQL (the running ones or throwaway ones), real servers."""

from __future__ import annotations

import logging
import os
import re
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


_WENT_WRONG = re.compile(r'"level": "(WARNING|ERROR|CRITICAL)"|"status": [45]\d\d')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that ran a `server` shows what that server logged as going wrong (its
    warnings, errors and answers of 400 and above) and its last lines: a CI failure is read
    once, on a clone that is gone afterwards."""
    outcome = yield
    report = outcome.get_result()
    srv = getattr(item, "funcargs", {}).get("server")
    log = getattr(srv, "log", None)
    if report.when != "call" or not report.failed or log is None or not log.exists():
        return
    lines = log.read_text(errors="replace").splitlines()
    wrong = [line for line in lines if _WENT_WRONG.search(line)]
    report.sections.append((f"server log {log.name}: {len(wrong)} lines of {len(lines)} went "
                            "wrong (the last 30 shown), then its last 25 lines",
                            "\n".join(wrong[-30:] + ["…"] + lines[-25:])))


class _SessionLines(logging.Handler):
    """Every line logged at INFO or above inside the test process, as the JSON formatter
    writes it."""

    def __init__(self) -> None:
        from command.ops.logs import JsonFormatter

        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is no line
            pass


_IN_PROCESS = _SessionLines()


def pytest_configure(config):
    root = logging.getLogger()
    root.addHandler(_IN_PROCESS)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session, exitstatus):
    """No log line of the whole session may carry personal data: every server's log (JSON lines
    at INFO, see servers.SESSION_LOG_ENV), the stderr of every CLI run and what the test process
    logged itself are scanned."""
    from tests import pii

    lines: list[str] = list(_IN_PROCESS.lines)
    for path in servers.SESSION_LOGS:
        try:
            lines += path.read_text(errors="replace").splitlines()
        except OSError:
            continue
    for text in servers.SESSION_CLI_STDERR:
        lines += text.splitlines()
    found = pii.findings(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and lines:
        reporter.write("\n")
        reporter.write_line(f"log scan: {len(lines)} lines of {len(servers.SESSION_LOGS)} server "
                            f"logs, {len(servers.SESSION_CLI_STDERR)} CLI runs and the test "
                            f"process, {len(found)} with personal data")
    if found:
        if reporter is not None:
            for line in found[:20]:
                reporter.write_line(f"  personal data in a log line: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
