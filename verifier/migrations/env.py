"""Alembic environment of the verifier's database (see `registry.database.run_migrations`)."""

from registry.database import run_migrations
from verifier.models import Base

run_migrations(Base.metadata)
