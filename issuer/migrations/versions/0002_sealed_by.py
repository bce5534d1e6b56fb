"""certificates.sealed_by: which agency key sealed each certificate, so a key rotated before
its batch is anchored has its certificates sealed again by the new key

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("sealed_by", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("sealed_by")
