"""re-check subscriptions, their notifications and dead letters (issue 11, point 12); the access
log keeps each verification's batch root and index, which a subscription follows

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("batch_root", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("batch_index", sa.Integer(), nullable=True))
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("batch_root", sa.String(length=66), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("from_block", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subscriptions_organisation_id", "subscriptions", ["organisation_id"])
    op.create_index("ix_subscriptions_root", "subscriptions", ["batch_root", "batch_index"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_org", "notifications", ["organisation_id", "id"])
    op.create_index("ix_notifications_subscription", "notifications", ["subscription_id", "state"])
    op.create_table(
        "subscription_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("subscription_cursor")
    op.drop_index("ix_notifications_subscription", table_name="notifications")
    op.drop_index("ix_notifications_org", table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_subscriptions_root", table_name="subscriptions")
    op.drop_index("ix_subscriptions_organisation_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("batch_index")
        batch.drop_column("batch_root")
