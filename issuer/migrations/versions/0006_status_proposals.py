"""status_proposals, status_proposal_items, status_proposal_chunks and
status_proposal_error_reports: suspend, reinstate and revoke proposed by a clerk, approved by a
different approver, then sent to the chain through an outbox of chunks (issuer.proposals)

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
        "status_proposals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_code", sa.String(length=18), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("proposer_id", sa.Integer(), sa.ForeignKey("agency_staff.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approver_id", sa.Integer(), sa.ForeignKey("agency_staff.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("action IN ('suspend', 'reinstate', 'revoke')", name="ck_status_proposals_action"),
        sa.CheckConstraint(
            "state IN ('proposed', 'approved', 'rejected', 'sent', 'confirmed', 'failed')",
            name="ck_status_proposals_state",
        ),
    )
    op.create_index("ix_status_proposals_agency_state", "status_proposals", ["agency_code", "state"])
    op.create_table(
        "status_proposal_items",
        sa.Column("proposal_id", sa.Integer(), sa.ForeignKey("status_proposals.id"), primary_key=True),
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), primary_key=True),
    )
    op.create_index("ix_status_proposal_items_certificate", "status_proposal_items", ["certificate_id"])
    op.create_table(
        "status_proposal_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("proposal_id", sa.Integer(), sa.ForeignKey("status_proposals.id"), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("word", sa.Integer(), nullable=False),
        sa.Column("mask", sa.LargeBinary(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=True),
        sa.Column("nonce", sa.Integer(), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.Integer(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("refusal", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("proposal_id", "batch_id", "word", name="uq_status_proposal_chunks_word"),
    )
    op.create_index("ix_status_proposal_chunks_proposal_id", "status_proposal_chunks", ["proposal_id"])
    op.create_index("ix_status_proposal_chunks_state", "status_proposal_chunks", ["state"])
    op.create_table(
        "status_proposal_error_reports",
        sa.Column("token", sa.String(length=43), primary_key=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("agency_staff.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_status_proposal_error_reports_created_at", "status_proposal_error_reports", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_status_proposal_error_reports_created_at", table_name="status_proposal_error_reports")
    op.drop_table("status_proposal_error_reports")
    op.drop_index("ix_status_proposal_chunks_state", table_name="status_proposal_chunks")
    op.drop_index("ix_status_proposal_chunks_proposal_id", table_name="status_proposal_chunks")
    op.drop_table("status_proposal_chunks")
    op.drop_index("ix_status_proposal_items_certificate", table_name="status_proposal_items")
    op.drop_table("status_proposal_items")
    op.drop_index("ix_status_proposals_agency_state", table_name="status_proposals")
    op.drop_table("status_proposals")
