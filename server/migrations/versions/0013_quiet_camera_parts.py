"""A camera's quiet share of a zone hour is a part of 0 in ``rollup_camera_parts``.

Ingest used to record only parts with people, so which cameras had a part of a shared zone hour told which saw
someone there: four cameras at a door whose in-count was withheld (1 to 4) gave it, 4 (found by review). Every
camera feeding a zone hour is now on record, and withheld with it (footfall.server.release.
withhold_cameras_with_hidden_parts).

- The missing parts of 0 are filled from the raw buckets still stored (hours whose buckets retention deleted
  keep the parts they had).
- The released values are recomputed on the server's next start (``release.ensure_release``, as after a change
  of k, and as 0009 did): the meta key of the k they were computed with is deleted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO rollup_camera_parts (zone_pk, camera_id, hour_start, people) "
        "SELECT g.zone_pk, g.camera_id, g.hour_start, 0 FROM ("
        "SELECT b.zone_pk AS zone_pk, b.camera_id AS camera_id, b.bucket_start - b.bucket_start % 3600 AS hour_start "
        "FROM buckets b JOIN zones z ON z.id = b.zone_pk WHERE z.measure != 'camera' "
        "GROUP BY b.zone_pk, b.camera_id, b.bucket_start - b.bucket_start % 3600) g "
        "WHERE NOT EXISTS (SELECT 1 FROM rollup_camera_parts p "
        "WHERE p.zone_pk = g.zone_pk AND p.camera_id = g.camera_id AND p.hour_start = g.hour_start)"
    )
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    op.execute("DELETE FROM rollup_camera_parts WHERE people = 0")
