"""audit_log, audit_heads and audit_anchors: every staff action in a hash-chained log per agency,
whose head is anchored on chain (issuer.audit)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency", sa.String(length=18), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("agency", "seq", name="uq_audit_log_agency_seq"),
    )
    op.create_index("ix_audit_log_agency_at", "audit_log", ["agency", "at"])
    op.create_table(
        "audit_heads",
        sa.Column("agency", sa.String(length=18), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency", sa.String(length=18), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_audit_anchors_agency", "audit_anchors", ["agency"])


def downgrade() -> None:
    op.drop_index("ix_audit_anchors_agency", table_name="audit_anchors")
    op.drop_table("audit_anchors")
    op.drop_table("audit_heads")
    op.drop_index("ix_audit_log_agency_at", table_name="audit_log")
    op.drop_table("audit_log")
