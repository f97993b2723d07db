"""Cells attributed to a gender bundle by the buckets it sent, not by the people it decided
(footfall.server.classifiers.attribute), and an hour an agent reported with nobody in it is a cell of 0 people.

- ``rollup_classifier_people.buckets``: the raw buckets per zone × UTC hour × bundle ('' for buckets without
  gender), filled from the raw buckets still stored. Hours whose buckets retention deleted count none, and keep
  the attribution from their people.
- ``rollup_hourly``: a cell of 0 people for each hour of a zone that has stored buckets but no cell (its buckets
  were all empty): the camera watched and nobody came, so means per hour of the week count it as a 0 rather than
  leave it out. Hours whose buckets retention deleted stay as they were.
- The released values, attributions, daily sums and slot running totals are recomputed on the server's next
  start (``release.ensure_release``, as after a change of k): the meta key of the k the cells were released with
  is deleted. Like a change of k, this shows at once the late people a cell was holding back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HOUR = "b.bucket_start - b.bucket_start % 3600"
KEY = "COALESCE(b.classifier, '')"


def _local_hour_of_week(hour_start: int, tz: str) -> int:
    """0 = Monday 00:00-01:00 local time ... 167 = Sunday 23:00-24:00 (as footfall.server.localtime, written out
    here so that this revision keeps meaning what it meant)."""
    local = datetime.fromtimestamp(hour_start, ZoneInfo(tz))
    return local.weekday() * 24 + local.hour


def upgrade() -> None:
    with op.batch_alter_table("rollup_classifier_people") as batch:
        batch.add_column(sa.Column("buckets", sa.BigInteger(), nullable=False, server_default="0"))
    # Empty buckets added no people, so their (zone, hour, bundle) may have no row yet.
    # Grouped first, then looked up: one probe per (zone, hour, bundle), not per bucket.
    op.execute(
        "INSERT INTO rollup_classifier_people (zone_pk, hour_start, classifier, people, buckets) "
        "SELECT g.zone_pk, g.hour_start, g.classifier, 0, 0 FROM "
        f"(SELECT b.zone_pk, {HOUR} AS hour_start, {KEY} AS classifier FROM buckets b "
        f"GROUP BY b.zone_pk, {HOUR}, {KEY}) g "
        "WHERE NOT EXISTS (SELECT 1 FROM rollup_classifier_people c WHERE c.zone_pk = g.zone_pk "
        "AND c.hour_start = g.hour_start AND c.classifier = g.classifier)"
    )
    # A range on bucket_start, not the hour expression, so that each row counts its buckets through
    # ix_buckets_zone_start instead of reading every bucket.
    op.execute(
        "UPDATE rollup_classifier_people SET buckets = (SELECT COUNT(*) FROM buckets b "
        "WHERE b.zone_pk = rollup_classifier_people.zone_pk "
        "AND b.bucket_start >= rollup_classifier_people.hour_start "
        "AND b.bucket_start < rollup_classifier_people.hour_start + 3600 "
        f"AND {KEY} = rollup_classifier_people.classifier)"
    )
    connection = op.get_bind()
    quiet = connection.execute(
        sa.text(
            "SELECT g.zone_pk, g.hour_start, s.timezone FROM "
            f"(SELECT DISTINCT b.zone_pk, {HOUR} AS hour_start FROM buckets b) g "
            "JOIN zones z ON z.id = g.zone_pk JOIN sites s ON s.site_id = z.site_id "
            "WHERE NOT EXISTS (SELECT 1 FROM rollup_hourly h WHERE h.zone_pk = g.zone_pk "
            "AND h.hour_start = g.hour_start)"
        )
    ).all()
    if quiet:
        connection.execute(
            sa.text(
                "INSERT INTO rollup_hourly (zone_pk, hour_start, local_how, people, female, male, unknown, "
                "dwell_samples, dwell_seconds) VALUES (:z, :h, :how, 0, 0, 0, 0, 0, 0)"
            ),
            [{"z": z, "h": int(h), "how": _local_hour_of_week(int(h), tz)} for z, h, tz in quiet],
        )
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    # The cells of 0 people stay: the revisions before read them as they read a cell whose bucket was sent again
    # with nobody in it.
    with op.batch_alter_table("rollup_classifier_people") as batch:
        batch.drop_column("buckets")
