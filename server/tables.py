"""The server's tables (SQLAlchemy 2.0 typed ORM). Alembic migrations in ``migrations/`` create them.

Times are stored as integer UNIX seconds (UTC): exact, compact, and compared the same way by SQLite and
PostgreSQL. Local calendar values that depend on a site's time zone (hour of week, day) are computed on
write and rebuilt when the site's time zone changes.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ZONE_KINDS = ("unknown", "entrance", "corridor", "food_court", "ad_slot", "shop_front", "exit", "other")


class Base(DeclarativeBase):
    # Every mapped class here is mapped to a Table (SQLAlchemy types __table__ as any FromClause).
    __table__: ClassVar[Table]


class Site(Base):
    __tablename__ = "sites"

    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Operator controls (admin API). demographics: footfall.core.wire.DemographicsMode, sent to the agents.
    demographics: Mapped[str] = mapped_column(String(16), default="full", server_default="full")
    k: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the server's k
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the server's retention
    closing_time: Mapped[str | None] = mapped_column(String(5), nullable=True)  # local "HH:MM"; None: midnight


class Zone(Base):
    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("site_id", "zone_id", name="uq_zones_site_zone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), ForeignKey("sites.site_id", ondelete="CASCADE"))
    zone_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    floor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(32), default="unknown")
    created_at: Mapped[int] = mapped_column(BigInteger)
    # What its people are (footfall.core.wire.Measure), from the aggregates: zone passes, a camera's distinct
    # visitors, entrance in or out. Only "passes" zones are zones to an operator; never add up different ones.
    measure: Mapped[str] = mapped_column(String(16), default="passes", server_default="passes")


class Agent(Base):
    __tablename__ = "agents"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="online")
    last_seen: Mapped[int] = mapped_column(BigInteger)
    last_status_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    outbox_depth: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str] = mapped_column(String(64), default="")
    cameras_json: Mapped[str] = mapped_column(Text, default="[]")
    models_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # ModelServing list
    cpu_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # CpuInfo
    demographics: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the mode it applies; None: not said
    # How far its clock ran ahead of the server's when its last status came, in seconds (0: not ahead; None: no
    # status since the column came). A message cannot arrive before it is sent, so only a lead proves a wrong clock.
    clock_ahead_s: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Bucket(Base):
    """Raw per-agent, per-camera bucket: the full count from the message with the highest seq."""

    __tablename__ = "buckets"
    __table_args__ = (Index("ix_buckets_zone_start", "zone_pk", "bucket_start"),)

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket_seconds: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    people: Mapped[int] = mapped_column(Integer)
    female: Mapped[int] = mapped_column(Integer)
    male: Mapped[int] = mapped_column(Integer)
    unknown: Mapped[int] = mapped_column(Integer)
    dwell_samples: Mapped[int] = mapped_column(Integer, default=0)
    dwell_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    received_at: Mapped[int] = mapped_column(BigInteger)
    # The gender bundle that decided it ('<name>@<version>', footfall.server.classifiers); None: no gender.
    classifier: Mapped[str | None] = mapped_column(String(100), nullable=True)


class BucketAge(Base):
    """People of a raw bucket per gender decision × age band (footfall.core.ages), from the same message
    as its ``buckets`` row. Only non-zero cells, and only for aggregates that carried ``age``: a bucket without
    rows here estimated no age, and its people count as age 'unknown' in the hourly cells."""

    __tablename__ = "bucket_ages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["agent_id", "camera_id", "zone_pk", "bucket_start"],
            ["buckets.agent_id", "buckets.camera_id", "buckets.zone_pk", "buckets.bucket_start"],
            ondelete="CASCADE",
        ),
    )

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gender: Mapped[str] = mapped_column(String(8), primary_key=True)  # footfall.core.wire.GenderDecision
    band: Mapped[str] = mapped_column(String(8), primary_key=True)  # footfall.core.ages.AgeDecision
    people: Mapped[int] = mapped_column(Integer)


class HourlyAge(Base):
    """People per zone × UTC hour × gender decision × age band (the finer cells of an hourly cell), and
    what of each is released (footfall.server.release.release_age_cells). Each gender's bands add up to that
    gender's count in ``rollup_hourly``; cells never filled are absent (0)."""

    __tablename__ = "rollup_hourly_age"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gender: Mapped[str] = mapped_column(String(8), primary_key=True)
    band: Mapped[str] = mapped_column(String(8), primary_key=True)
    people: Mapped[int] = mapped_column(BigInteger, default=0)
    released_people: Mapped[int] = mapped_column(BigInteger, default=0)


class _RollupCounts:
    people: Mapped[int] = mapped_column(BigInteger, default=0)
    female: Mapped[int] = mapped_column(BigInteger, default=0)
    male: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown: Mapped[int] = mapped_column(BigInteger, default=0)
    dwell_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    dwell_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class _ReleasedCounts:
    """What footfall.server.release lets out of a zone × hour cell, or the sums of such cells: every read
    endpoint sums these columns and nothing else. ``withheld`` counts the cells that had 1 to k-1 people."""

    released_people: Mapped[int] = mapped_column(BigInteger, default=0)
    released_female: Mapped[int] = mapped_column(BigInteger, default=0)
    released_male: Mapped[int] = mapped_column(BigInteger, default=0)
    released_unknown: Mapped[int] = mapped_column(BigInteger, default=0)
    released_dwell_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    released_dwell_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    withheld: Mapped[int] = mapped_column(BigInteger, default=0)


class HourlyRollup(_RollupCounts, _ReleasedCounts, Base):
    """Sum of raw buckets per zone and UTC hour (the release unit), with what of it may be released;
    ``local_how`` is the hour of week in the site's zone."""

    __tablename__ = "rollup_hourly"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    local_how: Mapped[int] = mapped_column(SmallInteger)
    # The bundle that decided most of the cell's people, whose rates correct its share (footfall.server.
    # classifiers.attribute); None: some of its people have no gender (counts-only), so it is not corrected.
    classifier: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Frozen: a change of k altered what readers had seen of this cell (footfall.server.rollups.cells.release_site).
    # What they saw before it, as JSON ({"values": RELEASED_FIELDS' values, "bands": [[gender, band, people]]}); the
    # cell keeps what it releases whatever arrives late, and a later change of k starts again from these values.
    # None: not frozen.
    shown: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The released people of the cell when readers first saw its split withheld (a part of 1 to k-1), recorded once
    # late people came: the split stays withheld whatever they bring (footfall.server.release.keep_withheld), so the
    # event the corrected share reads (footfall.server.shares) is the one of that size. None: no such record, or the
    # run of withheld splits it was of ended (the split shows again: rollups.cells).
    split_withheld_people: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ClassifierPeople(Base):
    """Per zone × UTC hour × the bundle that decided the genders ('' for buckets without gender): the raw people,
    and the raw buckets (one per agent, camera and bucket start, empty ones too) that ``rollup_hourly.classifier``
    is worked out from (footfall.server.classifiers.attribute). Kept by ingest's deltas beside the hourly cell."""

    __tablename__ = "rollup_classifier_people"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    classifier: Mapped[str] = mapped_column(String(100), primary_key=True)
    people: Mapped[int] = mapped_column(BigInteger, default=0)
    # 0 for the hours whose raw buckets retention deleted before schema revision 0010, which counted none.
    buckets: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class CameraPart(Base):
    """Raw people per zone × UTC hour × the camera that saw them pass it: the parts a camera's distinct people
    (its ``measure: camera`` cell) are made of where its zones and lines split its view. A camera's hour is
    released only while none of its parts is hidden (footfall.server.release.withhold_cameras_with_hidden_parts),
    so it cannot be differenced against its released zones. Kept by ingest's deltas, and kept forever like the
    hourly cells: a change of k recomputes the cameras' release from these after retention deleted the buckets."""

    __tablename__ = "rollup_camera_parts"
    # A camera's parts of an hour, and a zone's parts of an hour (every camera's share of it, which the key, zone
    # first and hour last, finds only by reading the zone's parts of every hour).
    __table_args__ = (
        Index("ix_camera_parts_camera_hour", "camera_id", "hour_start"),
        Index("ix_camera_parts_zone_hour", "zone_pk", "hour_start"),
    )

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    people: Mapped[int] = mapped_column(BigInteger, default=0)


class ObservedSeconds(Base):
    """Seconds of a zone × UTC hour that one camera of one agent reported: the lengths of its raw buckets summed.
    An agent sends each zone of a running camera a bucket every period, quiet or not, so a camera that ran for part
    of the hour (a reboot, a lost stream, an agent started at 10:23) reported less than 3600 s of it, and the
    hour's people are a lower bound (footfall.server.rollups.observed). Kept by ingest's deltas and kept for ever
    like the hourly cells; hours whose raw buckets retention deleted before schema revision 0016 have no rows."""

    __tablename__ = "rollup_observed"
    # The rows a read looks for, and few of them (an hour in progress, a camera's gaps): reads scan these only.
    __table_args__ = (
        Index(
            "ix_observed_part_hours",
            "zone_pk",
            "hour_start",
            sqlite_where=text("seconds != 3600"),
            postgresql_where=text("seconds != 3600"),
        ),
    )

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer, default=0)


class Classifier(Base):
    """A gender bundle agents reported with its decision rates (footfall.core.quantify.DecisionRates)."""

    __tablename__ = "classifiers"

    ref: Mapped[str] = mapped_column(String(100), primary_key=True)  # '<name>@<version>'
    rates_json: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[int] = mapped_column(BigInteger)
    last_seen: Mapped[int] = mapped_column(BigInteger)


class DailyRollup(_ReleasedCounts, Base):
    """Sums of the released hourly values per zone and local day (the day of each hour's start in the site's
    zone). It holds no raw counts: a day answers only with what its hours released."""

    __tablename__ = "rollup_daily"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class SlotCumulative(Base):
    """Running totals of released hourly values per zone and local hour of week over UTC weeks (Monday
    00:00 UTC to Monday).

    The row of week ``w`` holds the sums of the released values of every hourly rollup of its zone and local
    hour of week whose hour starts before the end of week ``w`` (``hours`` counts the weeks with such a row,
    ``withheld`` those of them withheld). A range of whole weeks is then the difference of two rows per slot,
    whatever its length. Rows are dense: every hour of week of every week from the zone's first to its last
    week (``SlotSpan``), so the row a query needs always exists.
    """

    __tablename__ = "rollup_slot_cumulative"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[int] = mapped_column(Integer, primary_key=True)
    local_how: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    people: Mapped[int] = mapped_column(BigInteger, default=0)
    female: Mapped[int] = mapped_column(BigInteger, default=0)
    male: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown: Mapped[int] = mapped_column(BigInteger, default=0)
    withheld: Mapped[int] = mapped_column(BigInteger, default=0)
    hours: Mapped[int] = mapped_column(BigInteger, default=0)


class SlotSpan(Base):
    """First and last UTC week with rows in ``rollup_slot_cumulative`` for a zone; its row lock serialises
    writers of that zone's running totals."""

    __tablename__ = "rollup_slot_span"

    zone_pk: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    first_week: Mapped[int] = mapped_column(Integer)
    last_week: Mapped[int] = mapped_column(Integer)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[int] = mapped_column(BigInteger, index=True)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # an agent key bound to one site
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class MarkedCell(Base):
    """The hourly cells of one site at a change of its k, each marked seen by readers or not
    (footfall.server.rollups.cells._mark_seen), so that each step of the change joins them instead of listing keys. A
    change of k fills it and empties it again in its own transaction: no other transaction ever sees a row. An ordinary
    table, not a temporary one, so that the server's database role needs no TEMPORARY privilege (an administrator may
    have revoked it from PUBLIC)."""

    __tablename__ = "release_marked_cells"

    # No foreign key: a row lives only inside the transaction that wrote it.
    zone_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seen: Mapped[bool] = mapped_column(Boolean)


class Meta(Base):
    """Small server-wide facts, e.g. ``raw_purged_before`` (the retention watermark)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
