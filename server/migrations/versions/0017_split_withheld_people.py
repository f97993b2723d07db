"""``rollup_hourly.split_withheld_people``: the people a cell released when readers first saw its split withheld,
kept once late people come (its split stays withheld), so the corrected share reads the withheld split at the size
readers saw it (footfall.server.shares).

Null for every cell: a cell's earlier releases are not on record, and each reads as before, at its released people.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rollup_hourly", sa.Column("split_withheld_people", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("rollup_hourly", "split_withheld_people")
