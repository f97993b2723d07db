"""``release_marked_cells``: an ordinary table where a change of k marks a site's cells seen or not.

A change of k marked them in a temporary table, which needs the TEMPORARY privilege on the database: on a
PostgreSQL where an administrator revoked it from PUBLIC, every change of a site's k (and the server's start after a
change of the server's k) failed with a database error. A change of k fills and empties this table in its own
transaction, so no other transaction sees its rows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_marked_cells",
        sa.Column("zone_pk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour_start", sa.BigInteger(), nullable=False),
        sa.Column("seen", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("zone_pk", "hour_start"),
    )


def downgrade() -> None:
    op.drop_table("release_marked_cells")
