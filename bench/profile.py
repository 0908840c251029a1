"""Optional sampling of the server during a phase with py-spy (`python -m bench --profile`).

py-spy is not a dependency: install it anywhere (`pip install --target /tmp/pyspy py-spy`) and
put it on PATH or name it with BENCH_PY_SPY. Samples are taken only from the thread holding the
GIL (--gil), so the shares are shares of the interpreter's time, which is what bounds throughput.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy executable, if any."""
    return os.environ.get("BENCH_PY_SPY") or shutil.which("py-spy")


class Sampler:
    """Records the server for `seconds` in the background; `top()` summarises the stacks."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int = 50) -> None:
        self.out = out
        exe = py_spy()
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
             str(rate), "--gil", "--nonblocking", "--format", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if exe else None

    def top(self, n: int = 25) -> list[tuple[float, str]]:
        """(share %, function (file)) by inclusive time, project code and a few hot spots."""
        if self.proc is None:
            return []
        self.proc.wait(120)
        if not self.out.exists():
            return []
        inclusive: collections.Counter = collections.Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            seen = set()
            for frame in stack.split(";"):
                name, _, where = frame.partition(" (")
                path = where.split(":")[0]
                key = f"{name} ({_short(path)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += int(count)
        boring = ("threading.py", "socketserver.py", "serving.py", "http/server.py")
        rows = [(100 * c / total, k) for k, c in inclusive.most_common()
                if not any(b in k for b in boring)]
        return rows[:n] if total else []


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return Path(path).name
