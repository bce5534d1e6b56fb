"""agency_staff, agency_staff_sessions and agency_staff_attempts (the verifier has its own `staff`
tables, and both services may share one database): agency staff who sign in to the console with a
password and a TOTP code, in one role (clerk, approver, auditor, admin)

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
    op.create_table(
        "agency_staff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_code", sa.String(length=18), sa.ForeignKey("agencies.code"), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=False),
        sa.Column("last_totp_step", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('clerk', 'approver', 'auditor', 'admin')", name="ck_agency_staff_role"),
    )
    op.create_index("ix_agency_staff_agency_code", "agency_staff", ["agency_code"])
    op.create_table(
        "agency_staff_sessions",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("agency_staff.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agency_staff_sessions_staff_id", "agency_staff_sessions", ["staff_id"])
    op.create_table(
        "agency_staff_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agency_staff_attempts_key_at", "agency_staff_attempts", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_agency_staff_attempts_key_at", table_name="agency_staff_attempts")
    op.drop_table("agency_staff_attempts")
    op.drop_index("ix_agency_staff_sessions_staff_id", table_name="agency_staff_sessions")
    op.drop_table("agency_staff_sessions")
    op.drop_index("ix_agency_staff_agency_code", table_name="agency_staff")
    op.drop_table("agency_staff")
