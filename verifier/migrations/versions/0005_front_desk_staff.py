"""front-desk staff accounts, their sessions, and the person behind each access (issue 11, points 1 and 13)

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
