"""Alembic environment of the wallet's database (see `registry.database.run_migrations`)."""

from registry.database import run_migrations
from wallet.models import Base

run_migrations(Base.metadata)
