"""Throwaway databases for the tests that run on PostgreSQL too (imported like `conftest`:
`tests/` is on the path)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database `ecert_test_<random>` on the server of `admin_url`, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    name = f"ecert_test_{secrets.token_hex(4)}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def issuer_alembic(engine: sa.Engine, step: str, revision: str) -> None:
    """`alembic upgrade|downgrade <revision>` of the issuer's migrations, to write data as an older
    revision had it."""
    from alembic import command
    from alembic.config import Config

    from issuer.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", "alembic_version_issuer")  # as `registry.database.migrate`
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)
