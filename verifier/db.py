"""The verifier node's database: shared plumbing from `registry.database`, its own migrations."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert

from registry.database import make_engine, sessions
from registry.database import migrate as _migrate
from registry.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
__all__ = ["MIGRATIONS", "insert_new", "make_engine", "migrate", "sessions"]


def migrate(engine: Engine) -> None:
    _migrate(engine, MIGRATIONS)


def insert_new(model: type[DeclarativeBase], dialect: str, key: list[str]) -> Insert:
    """`INSERT … ON CONFLICT (key) DO NOTHING`: a row whose key is taken (a replay, or the same row
    inserted at the same moment by another process) is skipped, not an error. Which rows were new:
    add `.returning(…)` (`rowcount` is -1 on PostgreSQL). SQLite and PostgreSQL, a node's databases."""
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    raise ConfigError(f"The verifier node runs on SQLite or PostgreSQL, not {dialect}")
