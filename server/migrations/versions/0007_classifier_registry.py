"""Which classifier bundle decided each cell, and the bundles' decision rates, so the server can correct the
female share for each bundle's known errors (issue #14).

- ``classifiers``: each gender bundle an agent reported with its decision rates ('<name>@<version>').
- ``buckets.classifier``: the bundle that decided the bucket's genders; NULL when it carries no gender
  (counts-only), '?' for the buckets stored before this revision (their bundle was not named).
- ``rollup_classifier_people``: raw people per zone × UTC hour × bundle ('' for people without gender).
- ``rollup_hourly.classifier``: the bundle the cell is attributed to (the one that decided most of its
  people); NULL when the cell has people without gender, who cannot be corrected.
- ``rollup_daily_classifier``: per zone, local day and bundle, the sums of the released female, male and
  unknown of the cells attributed to it (what day and week series correct).

Cells stored before this revision are attributed to the unnamed bundle '?': their share is not corrected, and
the answer says why (no rates are known for them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classifiers",
        sa.Column("ref", sa.String(100), primary_key=True),
        sa.Column("rates_json", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("buckets") as batch:
        batch.add_column(sa.Column("classifier", sa.String(100), nullable=True))
    with op.batch_alter_table("rollup_hourly") as batch:
        batch.add_column(sa.Column("classifier", sa.String(100), nullable=True))
    op.create_table(
        "rollup_classifier_people",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hour_start", sa.BigInteger(), primary_key=True),
        sa.Column("classifier", sa.String(100), primary_key=True),
        sa.Column("people", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "rollup_daily_classifier",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("classifier", sa.String(100), primary_key=True),
        sa.Column("released_female", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("released_male", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("released_unknown", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute("UPDATE buckets SET classifier = '?'")
    op.execute("UPDATE rollup_hourly SET classifier = '?' WHERE people > 0")
    op.execute(
        "INSERT INTO rollup_classifier_people (zone_pk, hour_start, classifier, people) "
        "SELECT zone_pk, hour_start, '?', people FROM rollup_hourly WHERE people > 0"
    )
    # Every cell with people is attributed to '?', so each day's released split is all of that bundle's.
    op.execute(
        "INSERT INTO rollup_daily_classifier (zone_pk, day, classifier, released_female, released_male, "
        "released_unknown) SELECT zone_pk, day, '?', released_female, released_male, released_unknown "
        "FROM rollup_daily WHERE released_female + released_male + released_unknown > 0"
    )


def downgrade() -> None:
    op.drop_table("rollup_daily_classifier")
    op.drop_table("rollup_classifier_people")
    with op.batch_alter_table("rollup_hourly") as batch:
        batch.drop_column("classifier")
    with op.batch_alter_table("buckets") as batch:
        batch.drop_column("classifier")
    op.drop_table("classifiers")
