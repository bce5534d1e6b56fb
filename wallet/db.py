"""The wallet's database: shared plumbing from `registry.database`, its own migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from registry.database import make_engine, sessions
from registry.database import migrate as _migrate

MIGRATIONS = Path(__file__).with_name("migrations")
__all__ = ["MIGRATIONS", "make_engine", "migrate", "sessions"]


def migrate(engine: Engine) -> None:
    _migrate(engine, MIGRATIONS)
