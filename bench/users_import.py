"""1,500 accounts in one step: `cmdcenter users import` of a grid office's spreadsheet.

`python -m bench.users_import [--lines N]` writes an .xlsx of N grid workers (default 1,500: a
county's grid workers), imports it with the CLI into a fresh SQLite data dir and prints the time
of the whole CLI process (start, validation, password hashing, one transaction). Target: seconds,
not minutes (≤ 30 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import ROOT

LINES = 1_500
TARGET_S = 30.0


def run(lines: int = LINES) -> dict:
    from openpyxl import Workbook

    from command import config
    from command.core import Core
    from command.units import service as units_service

    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-users-"))
    data = tmp / "data"
    core = Core(config.load(data_dir=data))
    with core.read() as session:
        grids = [u["code"] for u in units_service.get_all(session) if u["level"] == "grid"]
    core.close()
    book = Workbook()
    sheet = book.active
    sheet.append(["序号", "手机", "姓名", "角色", "单位", "登录名"])
    for i in range(lines):
        sheet.append([i + 1, 13800000000 + i, f"网格员{i:04d}", "网格员", grids[i % len(grids)],
                      f"wg{i:04d}"])
    path = tmp / "网格员.xlsx"
    book.save(path)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "command.cli", "users", "import", str(path),
                    "--passwords", str(tmp / "pw.csv"), "--data-dir", str(data)],
                   capture_output=True, text=True, cwd=ROOT, check=True, timeout=600)
    return {"lines": lines, "seconds": time.monotonic() - started}


def rows(r: dict) -> list[tuple[str, str, str, bool]]:
    return [(f"users import of {r['lines']:,} lines, CLI process (s)", f"{r['seconds']:.1f}",
             f"≤ {TARGET_S:g}", r["seconds"] <= TARGET_S)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.users_import",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=LINES)
    args = parser.parse_args(argv)
    r = run(args.lines)
    for label, value, target, ok in rows(r):
        print(f"{label}: {value}  (target {target}){'' if ok else '  ← MISSED'}")
    return 0 if all(row[3] for row in rows(r)) else 1


if __name__ == "__main__":
    sys.exit(main())
