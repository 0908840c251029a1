"""`cmdcenter backup`: one archive with a consistent copy of the database, taken while the
server runs, the data dir's files and a manifest.

The archive (`.tar.gz`, mode 0600) holds

- `database/cmdcenter.sqlite3` (SQLite's online backup API: one read transaction, so one
  consistent moment; writers go on meanwhile) or `database/postgresql.dump` (`pg_dump`, custom
  format: one snapshot);
- `data/…`: the data dir's files (briefs, photos …) except the database, its journals, lock
  files and the key;
- `key/secret.key` only with `--include-key`;
- `manifest.json` (last): product version, schema revision, time, the key's fingerprint and
  the SHA-256 and size of every other member.

Everything acknowledged before the backup started is in it: an ack is given after commit, and
the copy starts after that.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from command import keys
from command.config import ConfigError, Settings
from command.ops import pgtools

FORMAT = "cmdcenter-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/cmdcenter.sqlite3"
PG_MEMBER = "database/postgresql.dump"
KEY_MEMBER = "key/secret.key"
DATA_PREFIX = "data/"
# never copied from the data dir: the live database and its journals, locks, the key, earlier
# backups and first-password files that were left there
SKIP_SUFFIXES = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal", ".lock")
SKIP_PREFIXES = ("cmdcenter-backup-", "cmdcenter-passwords-", ".cmdcenter-backup-")


def product_version() -> str:
    """This installation's cmdcenter version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cmdcenter")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Made:
    """A finished backup."""

    path: Path
    manifest: dict

    def lines(self) -> list[str]:
        m = self.manifest
        db = m["database"]
        files = sum(1 for name in m["files"] if name.startswith(DATA_PREFIX))
        key = ("the secret key is IN the archive: keep it as safe as the key itself"
               if m["key"]["included"] else
               "the secret key is not in the archive: keep <data dir>/secret.key (or "
               "CMDCENTER_SECRET_KEY) elsewhere" if m["key"]["fingerprint"] else
               "this deployment has no secret key yet")
        return [f"backup of cmdcenter {m['version']} ({db['kind']}, schema revision "
                f"{db['schema_revision']}) with {files} data files", key]


class _Hashing(io.RawIOBase):
    """Reads at most `size` bytes of a file, hashing what it hands out."""

    def __init__(self, handle, size: int) -> None:
        self._handle, self._left, self.sha = handle, size, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        chunk = self._handle.read(min(len(buffer), self._left, 1 << 20))
        self._left -= len(chunk)
        self.sha.update(chunk)
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _add_file(tar: tarfile.TarFile, path: Path, name: str, files: dict) -> None:
    """Add a file as it is now (its size when opened: a growing log is cut there)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(os.fstat(handle.fileno()).st_mtime), 0o600
        reader = _Hashing(handle, size)
        tar.addfile(info, io.BufferedReader(reader, 1 << 20))
    files[name] = {"sha256": reader.sha.hexdigest(), "size": size}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, files: dict | None) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    info.mtime = int(datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))
    if files is not None:
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def data_files(data_dir: Path, skip: set[Path]) -> list[Path]:
    """The data dir's regular files worth keeping, in a stable order."""
    if not data_dir.is_dir():
        return []
    found = []
    for root, dirs, names in os.walk(data_dir):
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).resolve() in skip)
        for name in sorted(names):
            path = Path(root) / name
            if name == keys.KEY_FILE and Path(root) == data_dir:
                continue
            if name.endswith(SKIP_SUFFIXES) or name.startswith(SKIP_PREFIXES) \
                    or path.resolve() in skip or not path.is_file() or path.is_symlink():
                continue
            found.append(path)
    return found


def _sqlite_path(settings: Settings) -> Path:
    url = sa.engine.make_url(settings.db_url)
    return Path(url.database).resolve()


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: every page in one step, inside one read transaction."""
    if not source.is_file():
        raise ConfigError(f"no database at {source}: nothing to back up")
    src = sqlite3.connect(source, timeout=30)  # reads only (the server keeps writing)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: all at once, a consistent moment of the database
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        problem = dst.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise ConfigError(f"the copy of the database failed its check: {problem}")
    finally:
        dst.close()
        src.close()


def _facts(engine: sa.Engine) -> dict:
    """Schema revision and the key's fingerprint, as the database records them."""
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        if "alembic_version" not in tables:
            raise ConfigError("the database has no cmdcenter schema: nothing to back up")
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        fingerprint = None
        if "meta" in tables:
            fingerprint = conn.execute(sa.text("SELECT value FROM meta WHERE key = :k"),
                                       {"k": keys.FINGERPRINT_META}).scalar()
    return {"schema_revision": revision, "fingerprint": fingerprint}


def _dump_postgres(settings: Settings, target: Path) -> dict:
    engine = sa.create_engine(settings.db_url, poolclass=sa.pool.NullPool)
    try:
        facts = _facts(engine)
        with engine.connect() as conn:
            version_num = int(conn.execute(sa.text("SHOW server_version_num")).scalar())
            version = conn.execute(sa.text("SHOW server_version")).scalar()
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    finally:
        engine.dispose()
    tool = pgtools.choose("pg_dump", pgtools.server_major(version_num))
    uri, env = pgtools.libpq(settings.db_url)
    pgtools.run([tool.path, "--format=custom", "--no-owner", "--no-privileges",
                 f"--schema={schema}", f"--file={target}", f"--dbname={uri}"], env, "pg_dump")
    return {**facts, "kind": "postgresql", "server_version": version.split()[0],
            "pg_dump_version": ".".join(map(str, tool.version)), "schema": schema}


def _key(settings: Settings) -> bytes | None:
    """The deployment's secret key as this process finds it (env, else the key file)."""
    if settings.secret_key:
        return keys.read_secret(settings.secret_key, "CMDCENTER_SECRET_KEY")
    path = Path(settings.data_dir) / keys.KEY_FILE
    if path.is_file():
        return keys.read_secret(path.read_text(), str(path))
    return None


def default_name(now: datetime) -> str:
    """The archive's name when --out is a folder."""
    return f"cmdcenter-backup-{now:%Y%m%d-%H%M%S}.tar.gz"


def backup(settings: Settings, out: Path, *, include_key: bool, now: datetime) -> Made:
    """Write the archive to `out` (a new file, or a folder for the default name)."""
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / default_name(now)
    if out.exists():
        raise ConfigError(f"{out} exists already: a backup never replaces a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    postgres = bool(settings.database_url) and not settings.db_url.startswith("sqlite")
    staging = Path(tempfile.mkdtemp(prefix=".cmdcenter-backup-", dir=out.parent))
    partial = staging / "archive.tar.gz"
    try:
        files: dict[str, dict] = {}
        if postgres:
            dump = staging / "postgresql.dump"
            database = _dump_postgres(settings, dump)
            member, copy = PG_MEMBER, dump
        else:
            copy = staging / "cmdcenter.sqlite3"
            _copy_sqlite(_sqlite_path(settings), copy)
            engine = sa.create_engine(f"sqlite:///{copy}", poolclass=sa.pool.NullPool)
            try:
                database = {**_facts(engine), "kind": "sqlite",
                            "sqlite_version": sqlite3.sqlite_version}
            finally:
                engine.dispose()
            member = SQLITE_MEMBER
        recorded = database.pop("fingerprint")
        secret = _key(settings)
        fingerprint = recorded or (keys.fingerprint(secret) if secret else None)
        if include_key:
            if secret is None:
                raise ConfigError("--include-key: this deployment has no secret key (no "
                                  f"{keys.KEY_FILE} in the data dir, no CMDCENTER_SECRET_KEY)")
            if recorded and keys.fingerprint(secret) != recorded:
                raise ConfigError("--include-key: the key found is not the one the database "
                                  f"was written with (fingerprint {recorded})")
        data_dir = Path(settings.data_dir)
        skip = {staging.resolve(), out.resolve()}
        if not postgres:
            skip.add(_sqlite_path(settings))
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz",
                                                       compresslevel=6) as tar:
            _add_file(tar, copy, member, files)
            copy.unlink()  # the staging copy is not needed twice on disk
            for path in data_files(data_dir, skip):
                name = DATA_PREFIX + path.relative_to(data_dir).as_posix()
                try:
                    _add_file(tar, path, name, files)
                except FileNotFoundError:  # removed while we walked: not part of the moment
                    continue
            if include_key:
                _add_bytes(tar, KEY_MEMBER, secret + b"\n", files)
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "product": "cmdcenter",
                "version": product_version(), "created_at": now.isoformat(timespec="seconds"),
                "database": {**database, "member": member},
                "key": {"fingerprint": fingerprint, "included": include_key},
                "files": files,
            }
            _add_bytes(tar, MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1)
                       .encode("utf-8"), None)
            raw.flush()
            os.fsync(raw.fileno())
        os.link(partial, out)  # never replaces a file made meanwhile
        return Made(out, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
