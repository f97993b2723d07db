"""The derived tables behind every read, and their one owner: hourly cells (raw counts and what each releases),
daily sums and slot running totals of released values.

- :mod:`.cells`: ingest's write path (:func:`apply_hourly_deltas`), the daily sums, and recomputing what
  every cell releases when k changes (:func:`ensure_release`, :func:`release_site` for one site's own k);
- :mod:`.ages`: the gender × age-band cells of each hourly cell (ingest's deltas, their release, the check
  against the raw buckets, :func:`raw_vs_ages`);
- :mod:`.slots`: the running totals per zone × local hour of week that the ad-placement ranking reads;
- :mod:`.observed`: the seconds of each zone-hour each camera reported, and the hours watched for only part of
  their length;
- :mod:`.refile`: re-filing a site's hours under a new time zone, one zone per transaction;
- :mod:`.checks`: each derived table against what it summarises (empty when consistent), the people per
  cell and deciding bundle (footfall.server.classifiers) and per camera part against the raw buckets, and
  camera cells released beside a part below k.
"""

from footfall.server.rollups.ages import raw_vs_ages
from footfall.server.rollups.cells import (
    COUNTS,
    CameraPartDeltas,
    HourlyDeltas,
    apply_hourly_deltas,
    ensure_release,
    rebuild_daily,
    release_k,
    release_site,
)
from footfall.server.rollups.checks import (
    daily_vs_hourly,
    raw_vs_camera_parts,
    raw_vs_classifiers,
    raw_vs_hourly,
    released_thin_cameras,
    slots_vs_hourly,
)
from footfall.server.rollups.observed import raw_vs_observed
from footfall.server.rollups.refile import finish_refiles, refile_site, start_refile
from footfall.server.rollups.slots import rebuild_slots, slot_parts

__all__ = [
    "COUNTS",
    "CameraPartDeltas",
    "HourlyDeltas",
    "apply_hourly_deltas",
    "daily_vs_hourly",
    "ensure_release",
    "finish_refiles",
    "raw_vs_ages",
    "raw_vs_camera_parts",
    "raw_vs_classifiers",
    "raw_vs_hourly",
    "raw_vs_observed",
    "rebuild_daily",
    "rebuild_slots",
    "refile_site",
    "release_k",
    "release_site",
    "released_thin_cameras",
    "slot_parts",
    "slots_vs_hourly",
    "start_refile",
]
