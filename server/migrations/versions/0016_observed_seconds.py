"""``rollup_observed``: the seconds of each zone × UTC hour each camera reported (footfall.server.rollups.observed),
so an hour a camera watched for only part of its length is flagged as partly observed.

Filled from the raw buckets still stored; hours whose raw buckets retention deleted have no rows and are not
flagged (their seconds are unknown).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_observed",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hour_start", sa.BigInteger(), primary_key=True),
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("seconds", sa.Integer(), nullable=False),
    )
    part = sa.text("seconds != 3600")
    op.create_index(
        "ix_observed_part_hours",
        "rollup_observed",
        ["zone_pk", "hour_start"],
        sqlite_where=part,
        postgresql_where=part,
    )
    op.execute(
        "INSERT INTO rollup_observed (zone_pk, hour_start, agent_id, camera_id, seconds) "
        "SELECT zone_pk, bucket_start - bucket_start % 3600, agent_id, camera_id, SUM(bucket_seconds) FROM buckets "
        "GROUP BY zone_pk, bucket_start - bucket_start % 3600, agent_id, camera_id"
    )


def downgrade() -> None:
    op.drop_index("ix_observed_part_hours", table_name="rollup_observed")
    op.drop_table("rollup_observed")
