"""A throwaway `cmdcenter serve` subprocess for the benchmarks, and feeds registered by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.servers import free_port  # below the ephemeral range (bench.load uses it too)

ROOT = Path(__file__).resolve().parents[1]


class BenchServer:
    """`cmdcenter serve` on a free port with a fresh SQLite data dir; optional command prefix."""

    def __init__(self, data_dir: Path, env: dict[str, str], prefix: list[str] | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**os.environ, "CMDCENTER_DATABASE_URL": "", "CMDCENTER_REDIS_URL": "",
                    "CMDCENTER_LOG": "WARNING", **env}
        self.prefix = prefix or []
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "BenchServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "command.cli", "serve", "--data-dir",
                 str(self.data_dir), "--port", str(self.port)],
                stdout=handle, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text(errors='replace')}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log.read_text(errors='replace')}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: lets a profiler wrapper write its output
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def add_user_token(self, name: str, role: str = "duty") -> str:
        """Add a user through the CLI and return their personal token (to read /live)."""
        for args, stdin in ((["users", "add", name, "--role", role, "--password-stdin"],
                             "bench-password\n"), (["users", "token", name], None)):
            out = subprocess.run(
                [sys.executable, "-m", "command.cli", *args, "--data-dir", str(self.data_dir)],
                capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120, check=True,
                input=stdin)
        return out.stdout.strip().splitlines()[-1]

    def add_feed(self, name: str, unit: str) -> str:
        """Register a feed through the CLI, as an administrator would; return its token."""
        out = subprocess.run(
            [sys.executable, "-m", "command.cli", "feeds", "add", name, "--unit", unit, "--json",
             "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["token"]
