"""share_fetches: which trusted node fetched which share's disclosure, so a report of a look at a
share (`POST /v1/access-log/remote`) is taken only from a node that fetched it

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_fetches",
        sa.Column("share_id", sa.String(length=32), nullable=False),
        sa.Column("node_org_id", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["share_id"], ["shares.id"]),
        sa.ForeignKeyConstraint(["node_org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("share_id", "node_org_id"),
    )


def downgrade() -> None:
    op.drop_table("share_fetches")
