"""shares that only identified organisations may open (issue 11, point 13)

Revision ID: 0007
Revises: 0006

Shares made before this were open to anyone with the link, and stay so (false).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.add_column(
            sa.Column("identified_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.drop_column("identified_only")
