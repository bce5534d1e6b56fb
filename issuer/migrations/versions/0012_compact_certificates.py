"""certificates: ~1 KB a certificate at rest (issue 14)

- National co-seals are stored once per group (`national_seal_groups`; a certificate names its
  group, its proof is rebuilt when its package is made). Rows co-sealed before keep their own
  `national_seal` bytes and are read as they are.
- The blind index's digests move into the certificate row (`certificate_blind_index` goes: its
  row header, key and agency cost more than the digests), as BIGINTs: the first 8 bytes of each
  16-byte digest, big-endian and signed, which is what `issuer.blind_index` now makes.
- On PostgreSQL the identifier's uniqueness is a hash exclusion constraint.
- The indexes of mostly NULL columns (previous identifier, claim code) are partial.
- Who sealed a certificate is said once per job (`jobs.sealed_by`: one key seals a job at intake)
  and per batch once its members are sealed by one key (`batches.sealed_by`), not in each row;
  where the rows of a job or batch disagree it stays NULL, and the seal itself says (ecrecover).

Sealed fields written from now on are in form 2 (`issuer.sealed_fields`); older ones are read as
they are, so no data is re-encrypted.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DIGESTS = {"ix_certificates_number_digest": "number_digest", "ix_certificates_name_digest": "name_digest",
           "ix_certificates_code_digest": "code_digest"}  # fmt: skip
OLD_DIGEST_INDEXES = {"ix_certificate_blind_index_number": "number_digest",
                      "ix_certificate_blind_index_name": "name_digest",
                      "ix_certificate_blind_index_code": "code_digest"}  # fmt: skip

# the one key that sealed every certificate of a job or batch, else NULL
UNANIMOUS_SEALER = (
    "UPDATE {table} SET sealed_by = (SELECT min(c.sealed_by) FROM certificates c WHERE c.{key} = {table}.id)"
    " WHERE (SELECT count(DISTINCT c.sealed_by) FROM certificates c WHERE c.{key} = {table}.id) = 1"
    " AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.{key} = {table}.id AND c.sealed_by IS NULL)"
)
# PostgreSQL: bytes 1-8 of each digest as a signed BIGINT (bit(64) → bigint is two's complement)
MOVE_DIGESTS = (
    "UPDATE certificates SET"
    " number_digest = ('x' || encode(substring(b.number_digest from 1 for 8), 'hex'))::bit(64)::bigint,"
    " name_digest = ('x' || encode(substring(b.name_digest from 1 for 8), 'hex'))::bit(64)::bigint,"
    " code_digest = ('x' || encode(substring(b.code_digest from 1 for 8), 'hex'))::bit(64)::bigint"
    " FROM certificate_blind_index b WHERE b.certificate_id = certificates.id"
)


def _as_bigint(digest: bytes | None) -> int | None:
    return None if digest is None else int.from_bytes(digest[:8], "big", signed=True)


def _move_digests() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(MOVE_DIGESTS)
        return
    rows = bind.execute(
        sa.text("SELECT number_digest, name_digest, code_digest, certificate_id FROM certificate_blind_index")
    ).all()
    if rows:
        bind.execute(
            sa.text(
                "UPDATE certificates SET number_digest = :n, name_digest = :a, code_digest = :c WHERE id = :i"
            ),
            [{"n": _as_bigint(n), "a": _as_bigint(a), "c": _as_bigint(c), "i": i} for n, a, c, i in rows],
        )


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "national_seal_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
    )
    op.add_column("jobs", sa.Column("sealed_by", sa.String(length=42), nullable=True))
    op.add_column("batches", sa.Column("sealed_by", sa.String(length=42), nullable=True))
    for table, key in (("jobs", "job_id"), ("batches", "batch_id")):
        op.execute(UNANIMOUS_SEALER.format(table=table, key=key))
    # Plain ALTERs (SQLite ≥ 3.35 drops columns): a batch rebuild of certificates would have to
    # drop a table other tables' foreign keys name.
    op.execute("ALTER TABLE certificates DROP COLUMN sealed_by")
    if _postgresql():
        op.add_column("certificates", sa.Column("national_group_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_certificates_national_group_id",
            "certificates",
            "national_seal_groups",
            ["national_group_id"],
            ["id"],
        )
    else:  # alembic refuses constraints in SQLite's ALTER; SQLite takes them inline
        op.execute(
            "ALTER TABLE certificates ADD COLUMN national_group_id INTEGER REFERENCES national_seal_groups (id)"
        )
    for column in DIGESTS.values():
        op.add_column("certificates", sa.Column(column, sa.BigInteger(), nullable=True))
    op.create_index("ix_certificates_national_group_id", "certificates", ["national_group_id"])
    _move_digests()
    for name in OLD_DIGEST_INDEXES:
        op.drop_index(name, table_name="certificate_blind_index")
    op.drop_table("certificate_blind_index")
    for name, column in DIGESTS.items():
        op.create_index(name, "certificates", [column])
    op.drop_index("ix_certificates_previous_identifier", table_name="certificates")
    op.create_index(
        "ix_certificates_previous_identifier", "certificates", ["previous_identifier"],
        sqlite_where=sa.text("previous_identifier IS NOT NULL"),
        postgresql_where=sa.text("previous_identifier IS NOT NULL"),
    )  # fmt: skip
    if _postgresql():  # SQLite keeps its inline UNIQUE constraints: size is PostgreSQL's concern
        op.drop_constraint("certificates_identifier_key", "certificates", type_="unique")
        op.execute(
            "ALTER TABLE certificates ADD CONSTRAINT ex_certificates_identifier EXCLUDE USING hash (identifier WITH =)"
        )
        op.drop_constraint("certificates_claim_code_hash_key", "certificates", type_="unique")
        op.create_index(
            "uq_certificates_claim_code_hash", "certificates", ["claim_code_hash"], unique=True,
            postgresql_where=sa.text("claim_code_hash IS NOT NULL"),
        )  # fmt: skip


def downgrade() -> None:
    if _postgresql():
        op.drop_index("uq_certificates_claim_code_hash", table_name="certificates")
        op.create_unique_constraint("certificates_claim_code_hash_key", "certificates", ["claim_code_hash"])
        op.drop_constraint("ex_certificates_identifier", "certificates")
        op.create_unique_constraint("certificates_identifier_key", "certificates", ["identifier"])
    op.drop_index("ix_certificates_previous_identifier", table_name="certificates")
    op.create_index("ix_certificates_previous_identifier", "certificates", ["previous_identifier"])
    op.create_table(
        "certificate_blind_index",
        sa.Column(
            "certificate_id",
            sa.Integer(),
            sa.ForeignKey("certificates.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("agency_code", sa.String(length=18), nullable=False),
        *(sa.Column(column, sa.LargeBinary(length=16), nullable=True) for column in DIGESTS.values()),
    )
    # 8 bytes of each digest cannot give back 16: after a downgrade, `ecert issuer reindex` fills
    # the index again from the encrypted fields.
    for name, column in OLD_DIGEST_INDEXES.items():
        op.create_index(name, "certificate_blind_index", [column])
    for name in DIGESTS:
        op.drop_index(name, table_name="certificates")
    op.drop_index("ix_certificates_national_group_id", table_name="certificates")
    # Co-seals stored per group go with their table: those certificates are served without one
    # until they are co-sealed again (a package without a co-seal still verifies: it is optional).
    op.add_column(
        "certificates", sa.Column("sealed_by", sa.String(length=42), nullable=True)
    )  # NULL: the seal says
    if _postgresql():
        op.drop_constraint("fk_certificates_national_group_id", "certificates", type_="foreignkey")
    for column in ("national_group_id", *DIGESTS.values()):
        op.execute(f"ALTER TABLE certificates DROP COLUMN {column}")
    op.drop_table("national_seal_groups")
    op.drop_column("batches", "sealed_by")
    op.drop_column("jobs", "sealed_by")
