"""Database engine, schema metadata and migrations (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

metadata = sa.MetaData()
MIGRATIONS = Path(__file__).with_name("migrations")


class UTCDateTime(sa.types.TypeDecorator):
    """An aware datetime stored as naive UTC, read back as aware UTC on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        # hide_parameters: a failing statement's values (reporters, phones) stay out of logs
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                  hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # writers take the lock at BEGIN, so a reader never has to turn writer mid-transaction
            if conn.get_execution_options().get("immediate"):
                _begin_immediate(conn.connection.dbapi_connection)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                            hide_parameters=True)


SQLITE_WRITE_WAIT = 30.0  # seconds a writer waits for SQLite's write lock


def _begin_immediate(raw) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock without blocking the process.

    SQLite's own busy handler sleeps inside the C call: on gevent's hub a writer waiting there
    (a scheduler job, a REST write) froze every connection of the process while the ingest
    writer, on a native thread, held the lock. Here the lock is tried without waiting and the
    pauses between tries are cooperative (command.green.pause).
    """
    from command import green

    raw.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + SQLITE_WRITE_WAIT
        wait = 0.001
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
            green.pause(wait)
            wait = min(wait * 2, 0.016)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_WRITE_WAIT * 1000)}")


def make_sessionmaker(engine: Engine, *, write: bool = False) -> sessionmaker[Session]:
    """A session factory whose sessions keep loaded values after commit.

    `write=True` sessions lock SQLite for writing at BEGIN (no effect on PostgreSQL).
    """
    bind = engine.execution_options(immediate=True) if write else engine
    return sessionmaker(bind, expire_on_commit=False)


def alembic_config(url: str):
    """The Alembic configuration pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it in a fresh database)."""
    from alembic import command as alembic_command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection if sqlite else None
        if raw is not None:
            # SQLite changes a column by rebuilding its table, dropping the old one first:
            # with foreign keys on, that drop fails when other tables point at it. Off for the
            # migration (it only works outside a transaction), checked before they are on again.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                alembic_command.upgrade(cfg, "head")
            if raw is not None:
                broken = raw.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left broken references: {broken[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def last_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def startup_lock(engine: Engine, data_dir: Path):
    """Hold the deployment's start-up lock: processes starting together migrate and seed one
    after the other (the later ones find the work done).

    PostgreSQL: a session advisory lock on a connection of its own (a process that dies frees
    it at once); SQLite: an exclusive `flock` on `startup.lock` beside the database.
    """
    if engine.dialect.name == "postgresql":
        import hashlib

        key = int.from_bytes(hashlib.sha256(b"cmdcenter:startup").digest()[:8], "big",
                             signed=True)
        # a NullPool engine: closing the connection really ends the session (and the lock)
        locker = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
        try:
            with locker.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            locker.dispose()
        return
    import fcntl
    import os

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(data_dir) / "startup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing frees the flock


def utcnow() -> datetime:
    """Now, aware, in UTC (use the Clock in domain code)."""
    return datetime.now(timezone.utc)


def next_seq(session: Session, n: int = 1, *, counter: str = "seq") -> int:
    """Reserve `n` sequence numbers of `counter` and return the first.

    Counters: "seq" (incidents), "order_seq" (order nodes), "alert_seq" (alerts).

    The counter row stays locked until the transaction commits, so sequence numbers become
    visible in commit order (a reader never sees a smaller seq appear after a larger one).
    Call it last in a transaction to keep the lock short.
    """
    stmt = (sa.update(counters).where(counters.c.name == counter)
            .values(value=counters.c.value + n).returning(counters.c.value))
    last = session.execute(stmt).scalar_one()
    return last - n + 1


def last_seq(session: Session, *, counter: str = "seq") -> int:
    """The highest sequence number of `counter` handed out so far."""
    return session.execute(
        sa.select(counters.c.value).where(counters.c.name == counter)).scalar_one()


def get_meta(session: Session, key: str, default: str | None = None) -> str | None:
    """Read one value from the meta table."""
    value = session.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()
    return default if value is None else value


def set_meta(session: Session, key: str, value: str) -> None:
    """Write one value to the meta table."""
    if session.execute(sa.select(meta.c.key).where(meta.c.key == key)).first():
        session.execute(sa.update(meta).where(meta.c.key == key).values(value=value))
    else:
        session.execute(sa.insert(meta).values(key=key, value=value))
