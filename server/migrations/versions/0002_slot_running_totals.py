"""Running totals per zone × local hour of week over UTC weeks, so the ad-placement ranking reads two rows
per slot for any range of whole weeks; filled from the existing hourly rollups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    zone_fk = sa.ForeignKey("zones.id", ondelete="CASCADE")
    op.create_table(
        "rollup_slot_cumulative",
        sa.Column("zone_pk", sa.Integer(), zone_fk, primary_key=True),
        sa.Column("week", sa.Integer(), primary_key=True),
        sa.Column("local_how", sa.SmallInteger(), primary_key=True),
        sa.Column("female", sa.BigInteger(), nullable=False),
        sa.Column("male", sa.BigInteger(), nullable=False),
        sa.Column("unknown", sa.BigInteger(), nullable=False),
        sa.Column("hours", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "rollup_slot_span",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("first_week", sa.Integer(), nullable=False),
        sa.Column("last_week", sa.Integer(), nullable=False),
    )
    from footfall.server.slots import rebuild_slots

    bind = op.get_bind()
    zone_pks = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT zone_pk FROM rollup_hourly"))]
    rebuild_slots(bind, sorted(zone_pks))


def downgrade() -> None:
    op.drop_table("rollup_slot_span")
    op.drop_table("rollup_slot_cumulative")
