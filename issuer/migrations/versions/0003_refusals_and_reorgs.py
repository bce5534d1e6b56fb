"""batches.block_hash, retry_at, refusal and the batch_events table: a reverted anchor is
refused for good or retried after a back-off, and an anchor a reorg took away is recorded

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("block_hash", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("refusal", sa.String(length=64), nullable=True))
    op.create_table(
        "batch_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("block_number", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batch_events_batch_id", "batch_events", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_events_batch_id", table_name="batch_events")
    op.drop_table("batch_events")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("refusal")
        batch.drop_column("retry_at")
        batch.drop_column("block_hash")
