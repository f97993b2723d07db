"""Complementary suppression of cameras' distinct people (footfall.server.release.withhold_cameras_with_hidden_parts).

- ``rollup_camera_parts``: raw people per zone × UTC hour × the camera that saw them pass it, filled from the
  raw buckets still stored (hours whose buckets retention deleted have no parts, and their cameras keep the
  release they had).
- The released values are recomputed on the server's next start (``release.ensure_release``, as after a change
  of k): the meta key of the k they were computed with is deleted, so each camera hour with a hidden part is
  withheld from then on. Like a change of k, this shows at once the late people a cell was holding back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_camera_parts",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("hour_start", sa.BigInteger(), primary_key=True),
        sa.Column("people", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_camera_parts_camera_hour", "rollup_camera_parts", ["camera_id", "hour_start"])
    op.execute(
        "INSERT INTO rollup_camera_parts (zone_pk, camera_id, hour_start, people) "
        "SELECT b.zone_pk, b.camera_id, b.bucket_start - b.bucket_start % 3600, SUM(b.people) "
        "FROM buckets b JOIN zones z ON z.id = b.zone_pk WHERE z.measure != 'camera' "
        "GROUP BY b.zone_pk, b.camera_id, b.bucket_start - b.bucket_start % 3600"
    )
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    op.drop_index("ix_camera_parts_camera_hour", table_name="rollup_camera_parts")
    op.drop_table("rollup_camera_parts")
