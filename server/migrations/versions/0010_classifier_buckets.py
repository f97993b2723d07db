"""Cells attributed to a gender bundle by the buckets it sent, not by the people it decided
(footfall.server.classifiers.attribute).

- ``rollup_classifier_people.buckets``: the raw buckets per zone × UTC hour × bundle ('' for buckets without
  gender), filled from the raw buckets still stored. Hours whose buckets retention deleted count none, and keep
  the attribution from their people.
- The attributions are recomputed on the server's next start (``release.ensure_release``, as after a change of
  k): the meta key of the k the cells were released with is deleted. Like a change of k, this shows at once the
  late people a cell was holding back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HOUR = "b.bucket_start - b.bucket_start % 3600"
KEY = "COALESCE(b.classifier, '')"


def upgrade() -> None:
    with op.batch_alter_table("rollup_classifier_people") as batch:
        batch.add_column(sa.Column("buckets", sa.BigInteger(), nullable=False, server_default="0"))
    # Empty buckets added no people, so their (zone, hour, bundle) may have no row yet.
    op.execute(
        "INSERT INTO rollup_classifier_people (zone_pk, hour_start, classifier, people, buckets) "
        f"SELECT b.zone_pk, {HOUR}, {KEY}, 0, 0 FROM buckets b "
        "WHERE NOT EXISTS (SELECT 1 FROM rollup_classifier_people c WHERE c.zone_pk = b.zone_pk "
        f"AND c.hour_start = {HOUR} AND c.classifier = {KEY}) "
        f"GROUP BY b.zone_pk, {HOUR}, {KEY}"
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
    op.execute("DELETE FROM meta WHERE key = 'release_k'")


def downgrade() -> None:
    with op.batch_alter_table("rollup_classifier_people") as batch:
        batch.drop_column("buckets")
