"""wallet_correction_requests: a holder's requests to the issuing agency to correct a field or
renew a certificate, with the issuer's token (encrypted) and the last known answer (issue 12,
point 9)

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
    op.create_table(
        "wallet_correction_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.String(length=32), nullable=True),
        sa.Column("identifier", sa.String(length=120), nullable=False),
        sa.Column("token_enc", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=120), nullable=True),
        sa.Column("message_enc", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_enc", sa.LargeBinary(), nullable=True),
        sa.Column("new_identifier", sa.String(length=120), nullable=True),
        sa.Column("new_certificate_id", sa.String(length=32), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["holder_id"], ["wallet_holders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["certificate_id"], ["wallet_certificates.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["new_certificate_id"], ["wallet_certificates.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("wallet_correction_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wallet_correction_requests_holder_id"), ["holder_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("wallet_correction_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_correction_requests_holder_id"))
    op.drop_table("wallet_correction_requests")
