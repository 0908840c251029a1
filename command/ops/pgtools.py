"""PostgreSQL's own tools for backups: find a pg_dump/pg_restore that can talk to the server.

pg_dump dumps servers of its own major version and older, never newer ones; Debian installs
each major version's client under /usr/lib/postgresql/<major>/bin. The tool chosen is the
oldest installed one that is at least the server's version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from command.config import ConfigError

SEARCH = (Path("/usr/lib/postgresql"), Path("/usr/local/pgsql"))


@dataclass(frozen=True)
class Tool:
    """An installed client program and its version."""

    path: str
    version: tuple[int, ...]  # (15, 20)

    @property
    def major(self) -> int:
        return self.version[0]


def tool_version(path: str) -> tuple[int, ...] | None:
    """The version a PostgreSQL client program reports (`pg_dump (PostgreSQL) 15.20 …`)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except OSError:
        return None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out.stdout)
    if not found:
        return None
    return tuple(int(x) for x in found.groups() if x is not None)


def installed(name: str) -> list[Tool]:
    """Every installed `name` (pg_dump, pg_restore) with its version, oldest first."""
    paths = {str(p) for root in SEARCH if root.is_dir() for p in root.glob(f"*/bin/{name}")}
    on_path = shutil.which(name)
    if on_path:
        paths.add(on_path)
    tools = [Tool(p, v) for p in sorted(paths) if (v := tool_version(p)) is not None]
    # a version's own binary before a wrapper on PATH that reports the same version
    return sorted(tools, key=lambda t: (t.version, not any(
        t.path.startswith(str(root)) for root in SEARCH)))


def choose(name: str, server_major: int, tools: list[Tool] | None = None) -> Tool:
    """The oldest `name` whose major version is at least the server's; else a clear refusal."""
    tools = installed(name) if tools is None else tools
    fitting = [t for t in tools if t.major >= server_major]
    if fitting:
        return fitting[0]
    have = ", ".join(f"{t.path} ({'.'.join(map(str, t.version))})" for t in tools) or "none"
    raise ConfigError(
        f"{name} cannot work with this PostgreSQL {server_major} server: it needs {name} "
        f"{server_major} or newer (installed: {have}); install postgresql-client-{server_major}")


def server_major(version_num: int) -> int:
    """The major version of `SHOW server_version_num` (150020 → 15, 90624 → 9)."""
    return version_num // 10000


def libpq(url) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the tools, and the environment carrying its password (not on
    the command line, where `ps` would show it)."""
    parsed = make_url(str(url))
    env = {}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run(args: list[str], env: dict[str, str], what: str) -> None:
    """Run a tool; its complaint (first lines of stderr) becomes a ConfigError."""
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        lines = [x for x in done.stderr.strip().splitlines() if x.strip()][:3]
        raise ConfigError(f"{what} failed: {' / '.join(lines) or f'exit {done.returncode}'}")
