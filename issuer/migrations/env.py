"""Alembic environment of the issuer's database (see `registry.database.run_migrations`)."""

from registry.database import run_migrations
from issuer.models import Base

run_migrations(Base.metadata)
