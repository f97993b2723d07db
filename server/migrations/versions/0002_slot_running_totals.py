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

# The SQL of footfall.server.rollups.slots as it was at this revision: a migration must not run today's code
# against the schema of its own time.
_REBUILD_SPANS = sa.text(
    """
    INSERT INTO rollup_slot_span (zone_pk, first_week, last_week)
    SELECT zone_pk, min((hour_start - :monday) / :week), max((hour_start - :monday) / :week)
    FROM rollup_hourly WHERE zone_pk IN :zones GROUP BY zone_pk
    """
).bindparams(sa.bindparam("zones", expanding=True))

_REBUILD_TOTALS = sa.text(
    """
    WITH RECURSIVE hows(how) AS (SELECT 0 UNION ALL SELECT how + 1 FROM hows WHERE how < 167),
    weeks(zone_pk, week, last_week) AS (
        SELECT zone_pk, first_week, last_week FROM rollup_slot_span WHERE zone_pk IN :zones
        UNION ALL SELECT zone_pk, week + 1, last_week FROM weeks WHERE week < last_week
    ),
    sums(zone_pk, week, how, f, m, u, n) AS (
        SELECT zone_pk, (hour_start - :monday) / :week, local_how,
            sum(female), sum(male), sum(unknown), count(*)
        FROM rollup_hourly WHERE zone_pk IN :zones GROUP BY 1, 2, 3
    )
    INSERT INTO rollup_slot_cumulative (zone_pk, week, local_how, female, male, unknown, hours)
    SELECT w.zone_pk, w.week, x.how,
        sum(coalesce(s.f, 0)) OVER slot, sum(coalesce(s.m, 0)) OVER slot,
        sum(coalesce(s.u, 0)) OVER slot, sum(coalesce(s.n, 0)) OVER slot
    FROM weeks w CROSS JOIN hows x
    LEFT JOIN sums s ON s.zone_pk = w.zone_pk AND s.week = w.week AND s.how = x.how
    WINDOW slot AS (PARTITION BY w.zone_pk, x.how ORDER BY w.week)
    ORDER BY w.zone_pk, w.week, x.how
    """
).bindparams(sa.bindparam("zones", expanding=True))


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
    bind = op.get_bind()
    zone_pks = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT zone_pk FROM rollup_hourly"))]
    if zone_pks:
        weeks = {"zones": sorted(zone_pks), "monday": 4 * 24 * 3600, "week": 7 * 24 * 3600}
        bind.execute(_REBUILD_SPANS, weeks)
        bind.execute(_REBUILD_TOTALS, weeks)


def downgrade() -> None:
    op.drop_table("rollup_slot_span")
    op.drop_table("rollup_slot_cumulative")
