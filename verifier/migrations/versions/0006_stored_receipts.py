"""verification receipts kept with their own id for download, and the history they make (issue 11, points 4 and 5)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identifier", sa.String(length=120), nullable=True),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("disclosed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_receipts_org_created", "receipts", ["organisation_id", "created_at"])
    op.create_index("ix_receipts_org_identifier", "receipts", ["organisation_id", "identifier"])


def downgrade() -> None:
    op.drop_index("ix_receipts_org_identifier", table_name="receipts")
    op.drop_index("ix_receipts_org_created", table_name="receipts")
    op.drop_table("receipts")
