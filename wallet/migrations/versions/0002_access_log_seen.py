"""wallet_holders.access_seen_at: the newest access-log entry the holder has seen, so the home
screen can show how many looks are new (issue 11, point 13)

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
    with op.batch_alter_table("wallet_holders") as batch:
        batch.add_column(sa.Column("access_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wallet_holders") as batch:
        batch.drop_column("access_seen_at")
