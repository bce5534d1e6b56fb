"""shares and holdings bound to the wallet organisation that made them (issue 10, point 1)

Revision ID: 0003
Revises: 0002

Shares made before this: only a wallet may create a share and organisations are never deleted,
so with exactly one wallet organisation at the node every share is that wallet's and is bound
to it. With several (or none) the maker cannot be told: such a share, still live, would be a
link no wallet could withdraw any more, so it is ended now (withdrawn; the holder shares again).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.add_column(sa.Column("wallet_org_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_shares_wallet_org_id", "organisations", ["wallet_org_id"], ["id"])
        batch.drop_index("ix_shares_holder_ref")
        batch.create_index("ix_shares_wallet_org_holder", ["wallet_org_id", "holder_ref"], unique=False)
    op.create_table(
        "holdings",
        sa.Column("wallet_org_id", sa.Integer(), nullable=False),
        sa.Column("holder_ref", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["wallet_org_id"], ["organisations.id"], name="fk_holdings_wallet_org_id"),
        sa.PrimaryKeyConstraint("wallet_org_id", "holder_ref", "digest"),
    )
    organisations = sa.table("organisations", sa.column("id", sa.Integer), sa.column("kind", sa.String))
    shares = sa.table("shares", sa.column("wallet_org_id", sa.Integer),
                      sa.column("withdrawn_at", sa.DateTime(timezone=True)))  # fmt: skip
    connection = op.get_bind()
    wallets = (
        connection.execute(sa.select(organisations.c.id).where(organisations.c.kind == "wallet"))
        .scalars()
        .all()
    )
    if len(wallets) == 1:
        op.execute(shares.update().values(wallet_org_id=wallets[0]))
    else:
        op.execute(
            shares.update()
            .where(shares.c.withdrawn_at.is_(None))
            .values(withdrawn_at=dt.datetime.now(dt.UTC))
        )


def downgrade() -> None:
    op.drop_table("holdings")
    with op.batch_alter_table("shares") as batch:
        batch.drop_index("ix_shares_wallet_org_holder")
        batch.create_index("ix_shares_holder_ref", ["holder_ref"], unique=False)
        batch.drop_constraint("fk_shares_wallet_org_id", type_="foreignkey")
        batch.drop_column("wallet_org_id")
