"""Alembic environment of the issuer's database (see `registry.database.run_migrations`)."""

from issuer.models import Base
from registry.database import run_migrations

run_migrations(Base.metadata)
