"""People per gender decision × age-band decision (issue #17): raw per bucket, and per hourly cell with what of
each is released.

- ``bucket_ages``: non-zero cells of each bucket whose aggregate carried ``age``; deleted with their bucket.
- ``rollup_hourly_age``: per zone × UTC hour × gender × band, the people and what is released of them.

Buckets stored before this revision estimated no age: their people are age 'unknown'. Each cell of
``rollup_hourly`` then holds one band per gender, 'unknown', of that gender's count; such a band is the only one
of its gender, so it is released exactly when the gender is (footfall.server.release.release_age_cells).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GENDERS = ("female", "male", "unknown")


def upgrade() -> None:
    op.create_table(
        "bucket_ages",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("zone_pk", sa.Integer(), primary_key=True),
        sa.Column("bucket_start", sa.BigInteger(), primary_key=True),
        sa.Column("gender", sa.String(8), primary_key=True),
        sa.Column("band", sa.String(8), primary_key=True),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id", "camera_id", "zone_pk", "bucket_start"],
            ["buckets.agent_id", "buckets.camera_id", "buckets.zone_pk", "buckets.bucket_start"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "rollup_hourly_age",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hour_start", sa.BigInteger(), primary_key=True),
        sa.Column("gender", sa.String(8), primary_key=True),
        sa.Column("band", sa.String(8), primary_key=True),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("released_people", sa.BigInteger(), nullable=False),
    )
    for gender in GENDERS:
        op.execute(
            "INSERT INTO rollup_hourly_age (zone_pk, hour_start, gender, band, people, released_people) "
            f"SELECT zone_pk, hour_start, '{gender}', 'unknown', {gender}, released_{gender} FROM rollup_hourly "
            f"WHERE {gender} > 0"
        )


def downgrade() -> None:
    op.drop_table("rollup_hourly_age")
    op.drop_table("bucket_ages")
