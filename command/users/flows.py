"""Users in bulk: import a spreadsheet (all or nothing), export the same columns."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path

from command.users import importer, sheet
from command.users.principal import ROLE_LABELS

PASSWORD_HEADERS = ["登录名", "姓名", "角色", "单位", "初始密码"]


def default_passwords_path(now: datetime, folder: Path = Path(".")) -> Path:
    """Where first passwords go when no path is given: the current folder, stamped."""
    return folder / f"cmdcenter-passwords-{now:%Y%m%d-%H%M%S}.csv"


def import_users(core, path: Path, *, passwords_path: Path) -> tuple[importer.Imported,
                                                                   importer.Plan, Path | None]:
    """Import a users file; new accounts' first passwords go to `passwords_path` (mode 0600).

    Raises ImportRefused with every mistake when one remains (nothing is written). The password
    file is written before the commit and given its name after it: a failed commit leaves no
    file, a file that cannot be written leaves no accounts.
    """
    table = sheet.read(path)
    with core.read() as session:
        draft = importer.plan(session, table)
    if draft.errors:
        raise importer.ImportRefused(draft.errors)
    # hashing takes a few seconds for 1,500 accounts: done before the write transaction
    passwords = importer.generate_passwords([c["name"] for c in draft.create])
    if passwords and passwords_path.exists():
        raise FileExistsError(17, "the password file exists already", str(passwords_path))
    temp: Path | None = None
    try:
        with core.write() as session, session.begin():
            final = importer.plan(session, table)  # again, inside the transaction
            missing = [c["name"] for c in final.create if c["name"] not in passwords]
            passwords.update(importer.generate_passwords(missing))
            done = importer.apply(session, final, now=core.clock.now(), passwords=passwords)
            if done.passwords:
                temp = _write_private(passwords_path.with_name(
                    f".{passwords_path.name}.{os.getpid()}.tmp"), _password_csv(done))
        if temp is None:
            return done, final, None
        target, n = passwords_path, 1
        while True:  # never replace a file (one made meanwhile gets a neighbour)
            try:
                os.link(temp, target)
                return done, final, target
            except FileExistsError:
                target = passwords_path.with_name(f"{passwords_path.stem}-{n}{passwords_path.suffix}")
                n += 1
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def _password_csv(done: importer.Imported) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PASSWORD_HEADERS)
    for c in done.created:
        writer.writerow([c["name"], c["display_name"] or "", ROLE_LABELS.get(c["role"], c["role"]),
                         c["unit_code"] or "", done.passwords[c["name"]]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def export_users(core, path: Path) -> tuple[Path, int]:
    """Write every user to a new .csv or .xlsx with the import's columns (phones masked, no
    passwords); return the path and the number of users."""
    sheet.check_format(path)
    with core.read() as session:
        headers, rows = importer.export_rows(session)
    return sheet.write(path, headers, rows), len(rows)
