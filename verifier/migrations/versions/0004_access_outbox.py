"""access_log: entries reported by other regions' nodes (event id, unique; who reported them);
access_outbox: entries this node owes to the nodes whose shares it verified (issue 10, point 2)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("event_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reported_by", sa.String(length=200), nullable=True))
    op.create_index("ix_access_log_event_id", "access_log", ["event_id"], unique=True)
    op.create_table(
        "access_outbox",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_access_outbox_due", "access_outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_access_outbox_due", table_name="access_outbox")
    op.drop_table("access_outbox")
    op.drop_index("ix_access_log_event_id", table_name="access_log")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("reported_by")
        batch.drop_column("event_id")
