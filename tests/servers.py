"""Real servers for tests: a `cmdcenter serve` subprocess, throwaway Redis and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

# Every server of a test session logs JSON lines at INFO into its log file (unless a test sets
# CMDCENTER_LOG_FORMAT itself); when the session ends, conftest scans all of them, and the
# stderr of every CLI run, for personal data (tests/pii.py).
SESSION_LOG_ENV = {"CMDCENTER_LOG": "INFO", "CMDCENTER_LOG_FORMAT": "json"}
SESSION_LOGS: list[Path] = []
SESSION_CLI_STDERR: list[str] = []


def _below_ephemeral() -> range:
    """Ports under the range the kernel hands to outgoing connections (Linux: 32768-60999).

    A server port taken from that range can be taken by a client's connection while the
    server restarts on it: bench.load's reconnect storm, 2,000 screens reconnecting through
    nginx, once left a restarted process unable to listen for a minute (EADDRINUSE).
    """
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return range(max(1024, low - 12000), low)


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the ephemeral range."""
    import random

    ports = _below_ephemeral()
    for _ in range(500):
        port = random.choice(ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def cli(*args: str, env: dict | None = None, data_dir: Path | None = None,
        check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `cmdcenter ARGS` in a subprocess; return the completed process."""
    cmd = [sys.executable, "-m", "command.cli", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=120, input=input, cwd=ROOT)
    SESSION_CLI_STDERR.append(proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"cmdcenter {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Server:
    """A running `cmdcenter serve` (or `demo`) process."""

    data_dir: Path
    port: int
    env: dict
    proc: subprocess.Popen | None = None
    log: Path | None = None
    command: str = "serve"
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock forward (it must run with CMDCENTER_CLOCK_FILE): a time
        limit passes without waiting for it; read by the server within 0.1 s."""
        path = Path(self.env["CMDCENTER_CLOCK_FILE"])
        before = float(path.read_text() or 0) if path.exists() else 0.0
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(before + seconds))
        os.replace(tmp, path)  # the server never reads half a number

    def start(self, timeout: float = 60.0) -> "Server":
        self.log = self.data_dir / f"server-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.log not in SESSION_LOGS:
            SESSION_LOGS.append(self.log)
        env = {**os.environ, **self.env}
        if "CMDCENTER_LOG_FORMAT" not in self.env:
            env.update(SESSION_LOG_ENV)
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "command.cli", self.command, "--data-dir", str(self.data_dir),
             "--port", str(self.port), *self.extra],
            stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            wait_port(self.port, timeout, self.proc)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if requests.get(self.url + "/healthz", timeout=2).ok:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            raise TimeoutError("server did not become healthy")
        except Exception:
            self.stop()
            raise RuntimeError(f"server failed to start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if getattr(self, "_engine", None) is not None:
            self._engine.dispose()
            self._engine = self._write = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the server: no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def _session(self):
        """A write session on the server's database, opened in the test process: setting up a
        user or a feed here takes milliseconds, through the CLI a second or two (473 runs made
        up a third of the suite). The CLI's own commands are tested in test_cli.py."""
        if getattr(self, "_write", None) is None:
            from command.config import Settings
            from command.db import make_engine, make_sessionmaker

            url = Settings(data_dir=self.data_dir,
                           database_url=self.env.get("CMDCENTER_DATABASE_URL")).db_url
            self._engine = make_engine(url)
            self._write = make_sessionmaker(self._engine, write=True)
        return self._write()

    def add_user(self, name: str, role: str, unit: str | None = None,
                 password: str = "password-123") -> str:
        """Add a user (what `cmdcenter users add` and `users token` do); return their personal
        API token. A department is named by its code with or without `dept.`."""
        from datetime import datetime, timezone

        from command.users import service

        if role == "dept" and unit and not unit.startswith("dept."):
            unit = "dept." + unit
        with self._session() as session, session.begin():
            service.create(session, name=name, role=role, unit_code=unit, password=password,
                           now=datetime.now(timezone.utc))
            return service.issue_token(session, name=name)

    @property
    def duty_token(self) -> str:
        """A duty officer's token (the county-wide reader), made on first use."""
        if not getattr(self, "_duty_token", None):
            self._duty_token = self.add_user(f"duty-{self.port}", "duty")
        return self._duty_token

    def get(self, path: str, **kwargs) -> requests.Response:
        """GET an API path as the duty officer."""
        headers = {"Authorization": f"Bearer {self.duty_token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, headers=headers, **kwargs)

    def add_feed(self, name: str, unit: str = "DEMO-T01") -> str:
        """Register a feed (what `cmdcenter feeds add` does); return its token."""
        from datetime import datetime, timezone

        from command.feeds import service

        with self._session() as session, session.begin():
            _, token = service.create(session, name=name, unit_code=unit,
                                      now=datetime.now(timezone.utc))
        return token


def redis_available(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def start_throwaway_redis(tmp: Path) -> tuple[str, subprocess.Popen]:
    """Start a redis-server from the installed binary on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make test installs it)")
    port = free_port()
    return f"redis://127.0.0.1:{port}/0", start_throwaway_redis_on(tmp, port)


def start_throwaway_redis_on(tmp: Path, port: int) -> subprocess.Popen:
    """A redis-server on this port (again, after a test stopped it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make test installs it)")
    Path(tmp).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 20, proc)
    return proc


def postgres_available(url: str) -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (initdb + pg_ctl, as the postgres user when running as
    root) that a test may stop and start again; `close` removes it."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (make test installs it)")
        self.bindir = bins[-1]
        import tempfile

        self.port = free_port()
        # pytest's tmp dirs are private to root; the cluster lives where the postgres user can go
        self.tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-pg-"))
        self.tmp.chmod(0o755)
        self.data = self.tmp / "pgdata"
        self.data.mkdir()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
            shutil.chown(self.data, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *step: str) -> None:
        done = subprocess.run([*self.prefix, *step], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{step[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o",
                  f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1", "-w", "start",
                  "-l", str(self.tmp / "pg.log"))

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                        "-m", "fast", "stop"], capture_output=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_throwaway_postgres(tmp: Path) -> tuple[str, callable]:
    """A throwaway cluster on a free port; returns its URL and the function that removes it."""
    cluster = ThrowawayPostgres()
    return cluster.url, cluster.close
