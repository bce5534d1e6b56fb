"""Alembic environment: migrations run on the connection `issuer.db.migrate` hands over."""

from alembic import context

from issuer.models import Base

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,
    version_table=config.get_main_option("version_table") or "alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
