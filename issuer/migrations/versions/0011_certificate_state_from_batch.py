"""certificates: the anchoring queue's index holds pending rows only (ix_certificates_pending),
and a certificate's state after its batch is cut is its batch's (issuer.models)

Anchoring used to update every certificate row at each step of its batch (sealed, anchored,
confirmed): four versions of a ~2 KB row per certificate, and four entries in the queue index.
Now a row is written at intake and once more when its batch is cut; the index of the pending
queue is partial, so it holds only what waits. Stored states of rows batched before this
revision are no longer read (their batch's state is), so no data moves.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_certificates_outbox", table_name="certificates")
    op.create_index(
        "ix_certificates_pending", "certificates", ["agency_code", "type_code", "id"],
        sqlite_where=PENDING, postgresql_where=PENDING,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_certificates_pending", table_name="certificates")
    op.create_index("ix_certificates_outbox", "certificates", ["state", "agency_code", "type_code", "id"])
