"""access_log: an anonymous link visitor's claimed purpose (kept apart from the purposes an
organisation answers for), network prefix and user agent

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
ANONYMOUS = "公开链接访问者 / link visitor"  # verifier.access_log.ANONYMOUS when this was written


def upgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("claimed_purpose", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("ip_prefix", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(length=300), nullable=True))
    # Link visits logged before this: their purpose may be what the visitor typed. Shown from now
    # on as an unverified claim (it may also be the holder's own words: better doubted than trusted).
    log = sa.table("access_log", sa.column("organisation", sa.String), sa.column("purpose", sa.String),
                   sa.column("claimed_purpose", sa.String))  # fmt: skip
    op.execute(
        log.update().where(log.c.organisation == ANONYMOUS).values(claimed_purpose=log.c.purpose, purpose="")
    )


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("ip_prefix")
        batch.drop_column("claimed_purpose")
