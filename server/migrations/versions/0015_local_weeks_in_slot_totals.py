"""Slot running totals count weeks observed by local week: the next start rebuilds them.

A slot's weeks observed (the denominator of its mean people per week in the ad-placement ranking) was counted by
ingest once per cell, less the second cell of a local hour that happens twice when clocks go back; rebuilding the
totals (on a change of k or time zone) counted one per UTC week instead, and a UTC week holds two local weeks of a
slot when clocks go forward (London's Monday 00:00 on 23 and 30 March 2026). Both now count as ingest did.

No table changes. Upgrading deletes the meta key of the k the released values were computed with, so the next
start recomputes every released value, daily sum and slot total (as after a change of k) and the totals a rebuild
left are made again; downgrading does the same for the older server.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'release_k'")
