"""Privacy by construction: each zone × hour cell stores what it may release, and the daily rollup and the
slot running totals hold sums of released values only (footfall.server.release).

The released values depend on the server's k, which a migration does not know: this revision adds the
columns and empties the derived tables, and the server fills them on start (``release.ensure_release``), as
it does again whenever k changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_RELEASED = (
    ("released_people", sa.BigInteger()),
    ("released_female", sa.BigInteger()),
    ("released_male", sa.BigInteger()),
    ("released_unknown", sa.BigInteger()),
    ("released_dwell_samples", sa.BigInteger()),
    ("released_dwell_seconds", sa.Float()),
    ("withheld", sa.BigInteger()),
)
_RAW = ("people", "female", "male", "unknown", "dwell_samples", "dwell_seconds")


def _released_columns() -> list[sa.Column[Any]]:
    return [sa.Column(name, kind, nullable=False, server_default="0") for name, kind in _RELEASED]


def upgrade() -> None:
    with op.batch_alter_table("rollup_hourly") as batch:
        for column in _released_columns():
            batch.add_column(column)
    op.drop_table("rollup_daily")
    op.create_table(
        "rollup_daily",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *_released_columns(),
    )
    op.execute("DELETE FROM rollup_slot_cumulative")
    op.execute("DELETE FROM rollup_slot_span")
    with op.batch_alter_table("rollup_slot_cumulative") as batch:
        batch.add_column(sa.Column("people", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("withheld", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("DELETE FROM meta WHERE key = 'release_k'")  # the server computes the release on start


def downgrade() -> None:
    with op.batch_alter_table("rollup_slot_cumulative") as batch:
        batch.drop_column("withheld")
        batch.drop_column("people")
    op.drop_table("rollup_daily")
    op.create_table(
        "rollup_daily",
        sa.Column("zone_pk", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *(sa.Column(name, sa.Float() if name == "dwell_seconds" else sa.BigInteger(), nullable=False) for name in _RAW),
    )
    with op.batch_alter_table("rollup_hourly") as batch:
        for name, _ in reversed(_RELEASED):
            batch.drop_column(name)
    _refill_raw_daily()
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("rev0002", Path(__file__).with_name("0002_slot_running_totals.py"))
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    bind = op.get_bind()
    zone_pks = sorted(row[0] for row in bind.execute(sa.text("SELECT DISTINCT zone_pk FROM rollup_hourly")))
    if zone_pks:
        weeks = {"zones": zone_pks, "monday": 4 * 24 * 3600, "week": 7 * 24 * 3600}
        bind.execute(previous._REBUILD_SPANS, weeks)
        bind.execute(previous._REBUILD_TOTALS, weeks)


def _refill_raw_daily() -> None:
    """The raw sums per zone and local day that revision 0003 kept."""
    from collections import defaultdict
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT h.zone_pk, h.hour_start, s.timezone, "
            + ", ".join(f"h.{name}" for name in _RAW)
            + " FROM rollup_hourly h JOIN zones z ON z.id = h.zone_pk JOIN sites s ON s.site_id = z.site_id"
        )
    )
    days: dict[tuple[int, date], list[float]] = defaultdict(lambda: [0.0] * len(_RAW))
    for zone_pk, hour_start, tz, *values in rows:
        sums = days[(zone_pk, datetime.fromtimestamp(hour_start, ZoneInfo(tz)).date())]
        for i, value in enumerate(values):
            sums[i] += value
    if days:
        bind.execute(
            sa.text(
                f"INSERT INTO rollup_daily (zone_pk, day, {', '.join(_RAW)}) "
                f"VALUES (:zone_pk, :day, {', '.join(':' + name for name in _RAW)})"
            ),
            [
                {
                    "zone_pk": z,
                    "day": d,
                    **{n: (v if n == "dwell_seconds" else int(v)) for n, v in zip(_RAW, s, strict=True)},
                }
                for (z, d), s in days.items()
            ],
        )
