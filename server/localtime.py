"""UTC instants to a site's local calendar: hour of week and day, the units people plan ads and staff by."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY
MONDAY_EPOCH = 4 * 24 * HOUR  # 1970-01-05 00:00 UTC, a Monday: UTC weeks are counted from it
# The years the read API answers for; ingest refuses a bucket outside them, which no read could ever show.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def hour_floor(epoch: int) -> int:
    return epoch - epoch % HOUR


def hour_ceil(epoch: int) -> int:
    """The first hour start at or after ``epoch``."""
    return -hour_floor(-epoch)


def utc_week(epoch: int) -> int:
    """Index of the UTC week (Monday 00:00 UTC onwards) holding ``epoch``."""
    return (epoch - MONDAY_EPOCH) // WEEK


def week_epoch(week: int) -> int:
    """Start of UTC week ``week`` as a UNIX time."""
    return MONDAY_EPOCH + week * WEEK


@lru_cache(maxsize=20_000)  # shared by all sites: 2.3 years of hours of one time zone; ~4 MB when full
def local_hour_of_week(hour_start: int, tz: str) -> int:
    """0 = Monday 00:00-01:00 local time ... 167 = Sunday 23:00-24:00."""
    local = datetime.fromtimestamp(hour_start, zone(tz))
    return local.weekday() * 24 + local.hour


@lru_cache(maxsize=20_000)  # shared by all sites: 2.3 years of hours of one time zone; ~4 MB when full
def local_day(hour_start: int, tz: str) -> date:
    return datetime.fromtimestamp(hour_start, zone(tz)).date()


def local_midnight(day: date, tz: str) -> int:
    """UTC epoch of the start of ``day`` in ``tz`` (handles DST: a day may last 23 or 25 hours)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone(tz)).timestamp())


def day_range(start: int, end: int, tz: str) -> tuple[date, date]:
    """Local days whose start lies in [start, end): returns (first day, day after the last day)."""
    first = datetime.fromtimestamp(start, zone(tz)).date()
    if local_midnight(first, tz) < start:
        first += timedelta(days=1)
    last = datetime.fromtimestamp(end, zone(tz)).date()
    if local_midnight(last, tz) < end:
        last += timedelta(days=1)
    return first, max(first, last)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def how_label(how: int) -> str:
    return f"{WEEKDAYS[how // 24]} {how % 24:02d}:00-{(how % 24) + 1:02d}:00"


def to_iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def offset_seconds(moment: datetime) -> int:
    """The UTC offset of an aware datetime, in seconds."""
    # An aware datetime's utcoffset() is never None; typeshed types it Optional for naive ones.
    return int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]  # aware: not None


def _utc_offset_text(seconds: int) -> str:
    sign, seconds = ("-", -seconds) if seconds < 0 else ("+", seconds)
    return f"UTC{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def iso_and_local_labels(epochs: list[int], tz: str) -> tuple[list[str], list[str]]:
    """:func:`to_iso` and the local "YYYY-MM-DD HH:MM" of many instants at once (numpy formats them; strftime per
    point took most of a long series' response time).

    A local time that happens twice (clocks going back: 01:00 on 25 October 2026 in London) is labelled with its
    UTC offset, "2026-10-25 01:00 (UTC+01:00)" then "2026-10-25 01:00 (UTC+00:00)": two points or CSV rows with
    one label read as the same hour counted twice. Where clocks go back by less than an hour (Lord Howe Island),
    only the hour starting in the repeated half hour has the offset."""
    if not epochs:
        return [], []
    utc = np.array(epochs, dtype="datetime64[s]")
    place = zone(tz)
    moments = [datetime.fromtimestamp(e, place) for e in epochs]
    seconds = [offset_seconds(m) for m in moments]
    iso = np.char.add(np.datetime_as_string(utc, unit="s"), "Z")
    shifted = utc + np.array(seconds, dtype="timedelta64[s]")
    local: list[str] = np.char.replace(np.datetime_as_string(shifted, unit="m"), "T", " ").tolist()
    # A repeated time lies within a few hours of the change of offset that repeats it, so only instants of a UTC day
    # whose offset differs 3 hours before and after it are looked at one by one (a lookup per point doubled a long
    # series' labelling time otherwise).
    changing = {
        day
        for day in {e // DAY for e in epochs}
        if offset_seconds(datetime.fromtimestamp(day * DAY - 3 * HOUR, place))
        != offset_seconds(datetime.fromtimestamp((day + 1) * DAY + 3 * HOUR, place))
    }
    for i, moment in enumerate(moments):
        if epochs[i] // DAY in changing and offset_seconds(moment.replace(fold=1 - moment.fold)) != seconds[i]:
            local[i] += f" ({_utc_offset_text(seconds[i])})"
    return iso.tolist(), local


def bucket_starts_and_labels(
    keys: list[Any], granularity: str, tz: str, not_before: int | None = None
) -> tuple[list[str], list[str]]:
    """Each series bucket's start (UTC ISO) and its label in the site's time: "2026-11-16 14:00" for an hour
    (its key a UTC epoch), "2026-11-16" for a day and "week of 2026-11-16" for a week (keys local dates). A day or
    week that began before ``not_before`` (a range starting mid-week) starts there: it covers only that much."""
    if granularity == "hour":  # UTC instants: formatted all at once
        return iso_and_local_labels(keys, tz)
    days = [key for key in keys if isinstance(key, date)]
    prefix = "week of " if granularity == "week" else ""
    floor = not_before if not_before is not None else 0
    return [to_iso(max(local_midnight(day, tz), floor)) for day in days], [prefix + day.isoformat() for day in days]


def whole_days_from(start: int, end: int, granularity: str, tz: str) -> int:
    """Where a day or week series over [start, end) begins: the first local midnight at or after ``start`` (a day
    is counted whole or, the last one, up to ``end``; never from the middle), not past ``end``; ``start`` for
    hours."""
    if granularity == "hour":
        return start
    return min(local_midnight(day_range(start, end, tz)[0], tz), end)
