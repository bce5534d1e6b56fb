"""certificate_blind_index: one row per certificate (number_digest, name_digest, code_digest, each
indexed) instead of one per certificate and kind (issuer.blind_index)

Intake then inserts one row and three index entries per certificate instead of three rows, three
(certificate, kind) keys and three digest entries. The rows of 0007 are carried over as they are
(the digests do not change), so no reindex is needed.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {"ix_certificate_blind_index_number": "number_digest", "ix_certificate_blind_index_name": "name_digest",
           "ix_certificate_blind_index_code": "code_digest"}  # fmt: skip


def _rename_primary_key(table: str, made_as: str) -> None:
    """PostgreSQL keeps a renamed table's key name: give it the one the table would have had."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {made_as}_pkey TO {table}_pkey")


def upgrade() -> None:
    op.create_table(
        "certificate_blind_index_rows",
        sa.Column(
            "certificate_id",
            sa.Integer(),
            sa.ForeignKey("certificates.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("agency_code", sa.String(length=18), nullable=False),
        sa.Column("number_digest", sa.LargeBinary(length=16), nullable=True),
        sa.Column("name_digest", sa.LargeBinary(length=16), nullable=True),
        sa.Column("code_digest", sa.LargeBinary(length=16), nullable=True),
    )
    op.execute(
        "INSERT INTO certificate_blind_index_rows"
        " (certificate_id, agency_code, number_digest, name_digest, code_digest)"
        " SELECT c.certificate_id, c.agency_code, n.digest, a.digest, h.digest"
        " FROM (SELECT DISTINCT certificate_id, agency_code FROM certificate_blind_index) c"
        " LEFT JOIN certificate_blind_index n ON n.certificate_id = c.certificate_id AND n.kind = 'number'"
        " LEFT JOIN certificate_blind_index a ON a.certificate_id = c.certificate_id AND a.kind = 'holder_name'"
        " LEFT JOIN certificate_blind_index h ON h.certificate_id = c.certificate_id AND h.kind = 'holder_code'"
    )
    op.drop_index("ix_certificate_blind_index_digest", table_name="certificate_blind_index")
    op.drop_table("certificate_blind_index")
    op.rename_table("certificate_blind_index_rows", "certificate_blind_index")
    _rename_primary_key("certificate_blind_index", "certificate_blind_index_rows")
    for name, column in INDEXES.items():
        op.create_index(name, "certificate_blind_index", [column])


def downgrade() -> None:
    op.create_table(
        "certificate_blind_index_kinds",
        sa.Column("certificate_id", sa.Integer(), sa.ForeignKey("certificates.id"), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("agency_code", sa.String(length=18), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
    )
    op.execute(
        "INSERT INTO certificate_blind_index_kinds (certificate_id, kind, agency_code, digest)"
        " SELECT certificate_id, 'number', agency_code, number_digest FROM certificate_blind_index"
        " WHERE number_digest IS NOT NULL"
        " UNION ALL SELECT certificate_id, 'holder_name', agency_code, name_digest FROM certificate_blind_index"
        " WHERE name_digest IS NOT NULL"
        " UNION ALL SELECT certificate_id, 'holder_code', agency_code, code_digest FROM certificate_blind_index"
        " WHERE code_digest IS NOT NULL"
    )
    for name in INDEXES:
        op.drop_index(name, table_name="certificate_blind_index")
    op.drop_table("certificate_blind_index")
    op.rename_table("certificate_blind_index_kinds", "certificate_blind_index")
    _rename_primary_key("certificate_blind_index", "certificate_blind_index_kinds")
    op.create_index("ix_certificate_blind_index_digest", "certificate_blind_index", ["digest"])
