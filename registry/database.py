"""Database plumbing shared by the rooms: engines for SQLite and PostgreSQL, and alembic
migrations run in process from a room's own migrations folder."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

LOCK_TIMEOUT_MS = 60_000
IDLE_IN_TRANSACTION_MS = 300_000


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A time read back from the database, in UTC: SQLite returns naive datetimes for what every
    room stores in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL and a busy timeout so a worker and an API can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # A lock wait or a transaction left open must end in an error the caller retries and logs,
    # never in a thread that waits forever (the anchoring worker would stop without a word).
    options = (
        f"-c lock_timeout={LOCK_TIMEOUT_MS} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    )
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options})


def migrate(engine: Engine, migrations: Path) -> None:
    """Bring the schema to the newest migration of `migrations` (an alembic script folder), one
    process at a time: a service starting while a CLI command opens the same database would
    otherwise both create the version table, and one of them fail."""
    room = migrations.parent.name
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("version_table", f"alembic_version_{room}")
    if engine.dialect.name == "sqlite":
        with (
            _one_migration_at_a_time(engine),
            engine.connect() as connection,
            _sqlite_ddl_transaction(connection),
        ):
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # held to the end of this transaction
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:room))"), {"room": f"ecert:{room}"}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _sqlite_ddl_transaction(connection: Connection) -> Iterator[None]:
    """Each migration in one SQLite transaction, its DDL and its version row together. Python's
    sqlite3 opens a transaction only before DML, so each CREATE TABLE committed on its own: a
    process killed in a migration left tables without their version row, and every start after
    failed ("table … already exists"). Here the driver is in autocommit mode and every
    transaction SQLAlchemy begins (alembic commits each migration) starts with our own BEGIN."""
    raw: Any = connection.connection.driver_connection
    previous = raw.isolation_level
    raw.isolation_level = None

    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(connection, "begin", begin)
    try:
        yield
        if connection.in_transaction():
            connection.commit()
    finally:
        event.remove(connection, "begin", begin)
        if connection.in_transaction():
            connection.rollback()
        raw.isolation_level = previous


@contextlib.contextmanager
def _one_migration_at_a_time(engine: Engine) -> Iterator[None]:
    """An exclusive lock on a 0600 file beside a SQLite database (PostgreSQL locks in `migrate`)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def run_migrations(metadata: MetaData) -> None:
    """The body of every room's alembic `env.py`: migrate on the connection `migrate` hands over."""
    from alembic import context

    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=metadata,
        render_as_batch=True,
        version_table=config.get_main_option("version_table") or "alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def core_table(model: type[DeclarativeBase]) -> Table:
    """The Core `Table` of a mapped class, for bulk statements. SQLAlchemy types `__table__` as
    any `FromClause`; a declarative class with a `__tablename__` always has a `Table`."""
    return cast(Table, model.__table__)
