"""``ix_camera_parts_zone_hour``: the parts of one zone and hour found by index.

The primary key (zone, camera, hour) finds a zone's parts of one hour only by reading every part of that zone, one
per camera and hour. The release of a camera (footfall.server.release.withhold_cameras_with_hidden_parts) looks up
every camera's share of each zone hour its camera watched, so a change of k on PostgreSQL read each zone's parts once
per hour of them: over 90 days of 200 zones and 50 cameras it ran for more than 8 minutes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_camera_parts_zone_hour", "rollup_camera_parts", ["zone_pk", "hour_start"])


def downgrade() -> None:
    op.drop_index("ix_camera_parts_zone_hour", table_name="rollup_camera_parts")
