"""A cell whose release a change of k altered after readers had seen it is frozen: ``rollup_hourly.shown`` keeps what
readers saw before the change (JSON), and the cell keeps what it releases from then on, whatever arrives late
(footfall.server.rollups.cells.release_site). Readers saw its values under the old k too, so a late release measured
from its new values would show late people by differencing (7 people seen at k = 5, withheld at k = 10, released as
10 once 3 late people came). A later change of k starts again from what readers saw before the first.

Existing cells start unfrozen: a change of k made before this revision recomputed cells from their raw counts,
and what readers saw before it is not on record.

The slot running totals count weeks observed, not hourly rows: a local hour that happens twice when clocks go back
is one week observed (``rollup_slot_cumulative.hours``). They are rebuilt on the server's next start
(``release.ensure_release``; the meta key of the k the cells were released with is deleted), which with this
revision shows no late person: cells readers have seen keep what they answered.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollup_hourly") as batch:
        batch.add_column(sa.Column("shown", sa.Text(), nullable=True))
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    with op.batch_alter_table("rollup_hourly") as batch:
        batch.drop_column("shown")
