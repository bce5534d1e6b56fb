"""certificate_blind_index: keyed digests of certificates' numbers, holder names and holder codes
for the console's exact-match search (issuer.blind_index)

The digests need the index key and the data key, which migrations do not have: certificates
stored before this revision are indexed by `ecert issuer reindex` (the issuer service indexes
what it takes in from now on).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_blind_index",
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("agency_code", sa.String(length=18), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
    )
    op.create_index("ix_certificate_blind_index_digest", "certificate_blind_index", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_certificate_blind_index_digest", table_name="certificate_blind_index")
    op.drop_table("certificate_blind_index")
