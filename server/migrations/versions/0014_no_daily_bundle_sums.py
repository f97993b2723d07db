"""``rollup_daily_classifier`` goes: the corrected share of a day or week is read from its hour cells.

The estimate counts each cell whose split was withheld through the chance that a split of its size is withheld
(footfall.core.withheld_splits), so it needs each cell's size, which the daily sums per bundle did not keep; the
table was kept up to date by every ingest and read by nothing.

Downgrading creates the table again, empty, and deletes the meta key of the k the released values were computed
with, so the older server recomputes every released value and daily sum on its next start (as after a change of
k), this table's included.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("rollup_daily_classifier")


def downgrade() -> None:
    op.create_table(
        "rollup_daily_classifier",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("classifier", sa.String(100), primary_key=True),
        sa.Column("released_female", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("released_male", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("released_unknown", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute("DELETE FROM meta WHERE key = 'release_k'")
