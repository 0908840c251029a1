"""`cmdcenter serve --workers N`: N single-worker server processes on ports P … P+N−1, supervised.

Each child is a plain `cmdcenter serve --port P+i` with `CMDCENTER_NODE=<node><i>`, the name it
puts in front of the Engine.IO session ids it issues, so nginx can route a polling client's
requests back to it (deploy/nginx/cmdcenter.conf). The launcher

- migrates the schema once before any child starts (children find it done);
- restarts a child that dies (after 1 s, backing off to 30 s while it keeps dying young);
- on SIGTERM or SIGINT forwards SIGTERM to every child, waits for them (SIGKILL after
  `stop_seconds`) and exits 0;
- on SIGHUP restarts the children one at a time, each back and healthy before the next goes,
  so a deployment keeps serving while it is upgraded (`systemctl reload cmdcenter`).

Only PostgreSQL and Redis can be shared by processes: it refuses to start without them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.error import URLError
from urllib.request import urlopen

from command.config import ConfigError, Settings, mask_url

log = logging.getLogger(__name__)

RESTART_MIN = 1.0
RESTART_MAX = 30.0
YOUNG = 10.0  # a child that dies younger than this backs the next restart off


def check_shared(settings: Settings) -> None:
    """Refuse (one clear line) unless the database is PostgreSQL and Redis is configured."""
    missing = []
    if not settings.db_url.startswith("postgresql"):
        missing.append("PostgreSQL (CMDCENTER_DATABASE_URL=postgresql://…)")
    if not settings.redis_url:
        missing.append("Redis (CMDCENTER_REDIS_URL=redis://…)")
    if missing:
        raise ConfigError(
            "--workers needs " + " and ".join(missing) + ": processes share the store and the "
            "bus there (SQLite and the in-process bus belong to one process); without them "
            "run one process: cmdcenter serve")


@dataclass
class Child:
    """One supervised server process."""

    index: int
    node: str
    port: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = RESTART_MIN
    due: float = 0.0  # when a dead child is started again
    stopping: bool = False
    restarts: int = field(default=0)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the launcher dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Launcher:
    """Starts and supervises the children; `run` returns the exit status."""

    def __init__(self, settings: Settings, workers: int, *, node: str = "n",
                 data_dir: str | None = None, stop_seconds: float = 15.0,
                 out=sys.stdout) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be 1 or more, got {workers}")
        self.settings = settings
        self.data_dir = data_dir
        self.stop_seconds = stop_seconds
        self.out = out
        self.children = [Child(i, f"{node}{i}", settings.port + i) for i in range(workers)]
        self._stop = False
        self._reload = False

    # --- signals ----------------------------------------------------------------------------

    def _on_stop(self, signum, _frame) -> None:
        self._stop = True

    def _on_reload(self, _signum, _frame) -> None:
        self._reload = True

    # --- children ---------------------------------------------------------------------------

    def _command(self, child: Child) -> list[str]:
        cmd = [sys.executable, "-m", "command.cli", "serve", "--host", self.settings.host,
               "--port", str(child.port)]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, "CMDCENTER_NODE": child.node}
        child.proc = subprocess.Popen(self._command(child), env=env,
                                      preexec_fn=_die_with_parent)
        child.started = time.monotonic()
        child.stopping = False
        self._say(f"worker {child.node} on http://{self.settings.host}:{child.port} "
                  f"(pid {child.proc.pid})")

    def _healthy(self, child: Child) -> bool:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::", "") else self.settings.host
        host = f"[{host}]" if ":" in host else host
        try:
            with urlopen(f"http://{host}:{child.port}/healthz", timeout=2) as answer:
                return answer.status == 200
        except (URLError, OSError, ValueError):
            return False

    def _terminate(self, children: list[Child], timeout: float) -> None:
        """SIGTERM these children, wait up to `timeout`, then SIGKILL what is left."""
        for child in children:
            child.stopping = True
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self._say(f"worker {child.node} did not stop in {timeout:.0f} s: killed")
                child.proc.kill()
                child.proc.wait(10)

    def _wait_healthy(self, child: Child, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop:
            if child.proc is None or child.proc.poll() is not None:
                return False
            if self._healthy(child):
                return True
            time.sleep(0.2)
        return False

    def _rolling_restart(self) -> None:
        self._say("restarting the workers one at a time")
        for child in self.children:
            if self._stop:
                return
            self._terminate([child], self.stop_seconds)
            self._spawn(child)
            if not self._wait_healthy(child):
                self._say(f"worker {child.node} did not come back healthy; the others keep "
                          "their processes")
                return
        self._say("all workers restarted")

    def _reap(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None and not child.stopping:
                code = child.proc.returncode
                young = now - child.started < YOUNG
                child.backoff = min(child.backoff * 2, RESTART_MAX) if young else RESTART_MIN
                child.due = now + (child.backoff if young else RESTART_MIN)
                child.proc = None
                child.restarts += 1
                self._say(f"worker {child.node} exited ({_status(code)}); restarting in "
                          f"{child.due - now:.0f} s")
            if child.proc is None and not child.stopping and now >= child.due:
                self._spawn(child)

    # --- main -------------------------------------------------------------------------------

    def run(self) -> int:
        """Start every child and supervise until SIGTERM/SIGINT; 0 on a clean stop."""
        previous = {s: signal.signal(s, self._on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_reload)
        try:
            for child in self.children:
                self._spawn(child)
            self._say(f"{len(self.children)} workers; database "
                      f"{mask_url(self.settings.db_url)}, Redis "
                      f"{mask_url(str(self.settings.redis_url))} (SIGHUP: restart one at a time; "
                      "SIGTERM: stop)")
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self._rolling_restart()
                self._reap()
                time.sleep(0.2)
            self._say("stopping the workers")
            self._terminate(self.children, self.stop_seconds)
            return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._terminate([c for c in self.children if c.proc is not None
                             and c.proc.poll() is None], 5.0)

    def _say(self, line: str) -> None:
        print(f"cmdcenter: {line}", file=self.out, flush=True)
        log.info(line)


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"
