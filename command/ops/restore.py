"""`cmdcenter restore FILE`: a backup into an empty data dir and an empty database of its kind.

Everything is checked before anything is written: the manifest, every member's checksum, that
this cmdcenter knows the archive's schema revision, the kind of database, that the data dir
and the database are empty, and the secret key (from the archive, `--key-file` or
`CMDCENTER_SECRET_KEY`) against the fingerprint the archive records. Then the files, the
database and the key are put in place and an older schema is migrated. A restore that fails
half-way removes what it wrote (PostgreSQL's part runs in one transaction).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import sqlalchemy as sa

from command import keys
from command.config import ConfigError, Settings
from command.db import alembic_config, make_engine, migrate
from command.ops import pgtools
from command.ops.backup import (DATA_PREFIX, FORMAT, FORMAT_VERSION, KEY_MEMBER, MANIFEST,
                                PG_MEMBER, SQLITE_MEMBER)

UNREADABLE = ("ID numbers and party phones stay unreadable until the key is put in place "
              "(copy it to {key_path} with mode 0600, or set CMDCENTER_SECRET_KEY)")


@dataclass
class Restored:
    """What a restore did, for the person running it."""

    manifest: dict
    counts: dict[str, int]
    key_note: str
    migrated_from: str | None = None
    files: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        m = self.manifest
        counts = ", ".join(f"{n} {what}" for what, n in self.counts.items())
        out = [f"restored the backup of {m['created_at']} (cmdcenter {m['version']}, "
               f"{m['database']['kind']}): {counts}; {self.files} data files"]
        if self.migrated_from:
            out.append(f"schema migrated from revision {self.migrated_from} to "
                       f"{self.counts_revision}")
        out.append(self.key_note)
        return out + self.notes

    counts_revision: str = ""


def read_manifest(archive: Path) -> dict:
    """The archive's manifest (checked for its format)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                member = tar.getmember(MANIFEST)
            except KeyError:
                raise ConfigError(f"{archive} is not a cmdcenter backup (no {MANIFEST})") from None
            manifest = json.loads(tar.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ConfigError(f"{archive} cannot be read as a backup: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{archive} is not a cmdcenter backup of a format this version reads")
    return manifest


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == path.as_posix()


def verify(archive: Path, manifest: dict) -> None:
    """Every member listed, whole and unchanged; nothing else in the archive."""
    expected = dict(manifest["files"])
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name == MANIFEST:
                continue
            if member.name not in expected or not member.isfile() or not _safe(member.name):
                raise ConfigError(f"the archive holds {member.name!r}, which its manifest does "
                                  "not list: refused")
            digest = hashlib.sha256()
            reader = tar.extractfile(member)
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                digest.update(chunk)
            want = expected.pop(member.name)
            if digest.hexdigest() != want["sha256"] or member.size != want["size"]:
                raise ConfigError(f"checksum mismatch in the archive: {member.name} is damaged; "
                                  "nothing was restored")
    if expected:
        raise ConfigError(f"the archive lacks {sorted(expected)[0]} (and {len(expected) - 1} "
                          "more)" if len(expected) > 1 else
                          f"the archive lacks {next(iter(expected))}")


def _known_revision(revision: str) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        found = script.get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown id
        found = None
    if found is None:
        raise ConfigError(f"the backup's schema revision {revision} is unknown to this cmdcenter "
                          "(made by a newer version?): restore it with that version or newer")


def _key_decision(manifest: dict, archive: Path, settings: Settings,
                  key_file: Path | None) -> tuple[bytes | None, bytes | None, str]:
    """(secret to write as the key file, secret in use, source) — or a refusal on mismatch."""
    recorded = manifest["key"].get("fingerprint")
    found: list[tuple[str, bytes, bool]] = []  # (source, secret, write it as the key file)
    if manifest["key"].get("included"):
        with tarfile.open(archive, "r:gz") as tar:
            text = tar.extractfile(tar.getmember(KEY_MEMBER)).read().decode("utf-8")
        found.append(("the archive", keys.read_secret(text, "the archive's key"), True))
    if key_file is not None:
        found.append((str(key_file), keys.read_secret(Path(key_file).read_text(),
                                                      str(key_file)), True))
    if settings.secret_key:
        found.append(("CMDCENTER_SECRET_KEY",
                      keys.read_secret(settings.secret_key, "CMDCENTER_SECRET_KEY"), False))
    for source, secret, _ in found:
        mine = keys.fingerprint(secret)
        if recorded and mine != recorded:
            raise ConfigError(f"the key from {source} (fingerprint {mine}) is not the key of "
                              f"this backup (fingerprint {recorded}): nothing was restored")
        if mine != keys.fingerprint(found[0][1]):
            raise ConfigError(f"the keys from {found[0][0]} and {source} differ: give one key")
    if not found:
        return None, None, ""
    source, secret, write = next(((s, x, w) for s, x, w in found if w), found[0])
    return (secret if write else None), secret, source


def _sqlite_target(settings: Settings) -> Path:
    return Path(sa.engine.make_url(settings.db_url).database).resolve()


def _check_empty_dir(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise ConfigError(f"the data dir {data_dir} is not empty: restore into an empty or new "
                          "one (a restore never overwrites anything)")


def _postgres_target(settings: Settings, manifest: dict) -> tuple[int, str]:
    """(server major, schema) of an empty target database, or a refusal."""
    engine = sa.create_engine(settings.db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            version_num = int(conn.execute(sa.text("SHOW server_version_num")).scalar())
            tables = conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                "current_schema()")).scalar() if schema else 0
    finally:
        engine.dispose()
    wanted = manifest["database"].get("schema", "public")
    if schema is None:
        raise ConfigError(f"the target database has no schema {wanted!r} on its search_path")
    if tables:
        raise ConfigError(f"the target database is not empty ({tables} tables in schema "
                          f"{schema!r}): restore into an empty database")
    if schema != wanted:
        raise ConfigError(f"the backup holds schema {wanted!r}; the target database's schema is "
                          f"{schema!r}: restore into a database whose schema is {wanted!r}")
    return pgtools.server_major(version_num), schema


def restore(settings: Settings, archive: Path, *, key_file: Path | None = None) -> Restored:
    """Check everything, then put the backup in place; return what was done."""
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise FileNotFoundError(2, "No such file", str(archive))
    manifest = read_manifest(archive)
    verify(archive, manifest)
    db = manifest["database"]
    _known_revision(db["schema_revision"])
    postgres = bool(settings.database_url) and not settings.db_url.startswith("sqlite")
    kind = "postgresql" if postgres else "sqlite"
    if db["kind"] != kind:
        raise ConfigError(f"the backup holds a {db['kind']} database; this restore would go to "
                          f"{kind} (set CMDCENTER_DATABASE_URL to a {db['kind']} database)")
    data_dir = Path(settings.data_dir).expanduser().resolve()
    _check_empty_dir(data_dir)
    restore_tool = None
    if postgres:
        major, schema = _postgres_target(settings, manifest)
        restore_tool = pgtools.choose("pg_restore", major)
        dumped = int(str(db.get("pg_dump_version", "0")).split(".")[0])
        if restore_tool.major < dumped:
            raise ConfigError(f"the dump was made by pg_dump {db['pg_dump_version']}; "
                              f"pg_restore {restore_tool.major} cannot read it: install "
                              f"postgresql-client-{dumped}")
    else:
        target = _sqlite_target(settings)
        if target.exists():
            raise ConfigError(f"{target} exists: a restore never overwrites a database")
    to_write, secret, source = _key_decision(manifest, archive, settings, key_file)

    created_dir = not data_dir.exists()
    written: list[Path] = []
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        files = 0
        with tempfile.TemporaryDirectory(prefix=".cmdcenter-restore-", dir=data_dir) as temp, \
                tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name.startswith(DATA_PREFIX):
                    path = (data_dir / member.name[len(DATA_PREFIX):]).resolve()
                    if data_dir not in path.parents:
                        raise ConfigError(f"refused: {member.name} points outside the data dir")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _write(tar, member, path)
                    written.append(path)
                    files += 1
                elif member.name == SQLITE_MEMBER:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    part = target.with_name(target.name + ".restoring")
                    _write(tar, member, part)
                    written.append(part)
                    os.link(part, target)  # never replaces a database made meanwhile
                    written.append(target)
                    part.unlink()
                elif member.name == PG_MEMBER:
                    dump = Path(temp) / "postgresql.dump"
                    _write(tar, member, dump)
                    _pg_restore(settings, restore_tool, dump, schema, Path(temp))
        if to_write is not None:
            key_path = data_dir / keys.KEY_FILE
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(to_write.decode("utf-8") + "\n")
            written.append(key_path)
        engine = make_engine(settings.db_url)
        try:
            migrate(engine)  # an older schema is brought to this version's
            counts, revision = _counts(engine)
        finally:
            engine.dispose()
    except BaseException:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise

    key_path = data_dir / keys.KEY_FILE
    if secret is not None:
        note = (f"the secret key (fingerprint {keys.fingerprint(secret)}) came from {source}"
                + (f" and is in {key_path}" if to_write is not None
                   else ": keep CMDCENTER_SECRET_KEY set for the server"))
    elif manifest["key"].get("fingerprint"):
        note = ("no key given: the restore is complete, but " +
                UNREADABLE.format(key_path=key_path) +
                f"; the key's fingerprint is {manifest['key']['fingerprint']}")
    else:
        note = "the backed-up deployment had no secret key"
    result = Restored(manifest, counts, note, files=files)
    if revision != db["schema_revision"]:
        result.migrated_from = db["schema_revision"]
        result.counts_revision = revision
    return result


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        shutil.copyfileobj(tar.extractfile(member), handle, 1 << 20)
        handle.flush()
        os.fsync(handle.fileno())


def _pg_restore(settings: Settings, tool, dump: Path, schema: str, temp: Path) -> None:
    """pg_restore in one transaction, without the schema's own entry (the schema exists)."""
    uri, env = pgtools.libpq(settings.db_url)
    listing = temp / "restore.list"
    import subprocess

    toc = subprocess.run([tool.path, "-l", str(dump)], capture_output=True, text=True)
    if toc.returncode != 0:
        raise ConfigError(f"pg_restore cannot read the dump: {toc.stderr.strip()[:300]}")
    keep = [line for line in toc.stdout.splitlines()
            if f" SCHEMA - {schema} " not in line and f" COMMENT - SCHEMA {schema} " not in line]
    listing.write_text("\n".join(keep) + "\n")
    pgtools.run([tool.path, "--single-transaction", "--exit-on-error", "--no-owner",
                 "--no-privileges", f"--use-list={listing}", f"--dbname={uri}", str(dump)],
                env, "pg_restore")


def _counts(engine: sa.Engine) -> tuple[dict[str, int], str]:
    with engine.connect() as conn:
        counts = {}
        for table, label in (("incidents", "incidents"), ("order_nodes", "order nodes"),
                             ("alerts", "alerts"), ("users", "users")):
            counts[label] = int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar())
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return counts, revision
