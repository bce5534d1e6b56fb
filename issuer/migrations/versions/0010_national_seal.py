"""certificates.national_seal and national_key_id: each certificate's share of its group's SM2/SM3
co-seal (signature ‖ inclusion proof, docs/PROTOCOL.md §12) and the SM2 key that made it, so a
key rotated before the batch is anchored has its groups sealed again by the new key. NULL for
certificates issued before the co-seal, or by an agency without an SM2 key.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:  # plain ALTER TABLE: no copy of the (large) table, on SQLite either
    op.add_column("certificates", sa.Column("national_seal", sa.LargeBinary(), nullable=True))
    op.add_column("certificates", sa.Column("national_key_id", sa.LargeBinary(length=32), nullable=True))


def downgrade() -> None:  # SQLite ≥ 3.35 drops a plain column in place
    op.drop_column("certificates", "national_key_id")
    op.drop_column("certificates", "national_seal")
