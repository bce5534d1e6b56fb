"""correction_requests: holders' requests to correct a field or renew a certificate, in the
agency's queue with a deadline (issuer.corrections)

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
    op.create_table(
        "correction_requests",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("agency_code", sa.String(length=18), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), nullable=False),
        sa.Column("identifier", sa.String(length=120), nullable=False),
        sa.Column("type_code", sa.String(length=21), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("open_key", sa.String(length=340), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Integer(), sa.ForeignKey("agency_staff.id"), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("new_identifier", sa.String(length=120), nullable=True),
        sa.CheckConstraint("kind IN ('field', 'renewal')", name="ck_correction_requests_kind"),
        sa.CheckConstraint("status IN ('open', 'fixed', 'refused')", name="ck_correction_requests_status"),
        sa.UniqueConstraint("identifier", "idempotency_key", name="uq_correction_requests_idempotency"),
        sa.UniqueConstraint("open_key", name="uq_correction_requests_open_key"),
    )
    op.create_index(
        "ix_correction_requests_queue", "correction_requests", ["agency_code", "status", "due_at"]
    )
    op.create_index("ix_correction_requests_certificate_id", "correction_requests", ["certificate_id"])


def downgrade() -> None:
    op.drop_index("ix_correction_requests_certificate_id", table_name="correction_requests")
    op.drop_index("ix_correction_requests_queue", table_name="correction_requests")
    op.drop_table("correction_requests")
