"""Response models: they document the API in OpenAPI and keep responses stable for the dashboard."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from footfall.core.wire import CpuInfo, DemographicsMode, ModelServing, RefusalCode, SiteSettings
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator


class Counts(BaseModel):
    """Sums of what the zone × hour cells behind them released (see "Privacy" in server/API.md). A count is
    ``null`` only when nothing behind it was released."""

    people: int | None = Field(description="People in the released cells; a lower bound when cells were withheld.")
    female: int | None = Field(description="Female, in the cells that released their gender split.")
    male: int | None
    unknown: int | None = Field(description="Not classified (face never seen well enough), in those cells.")
    unsplit: int = Field(description="People of released cells whose gender split was withheld.")
    withheld_cells: int = Field(description="Zone × hour cells with 1 to k-1 people, left out entirely.")
    people_lower_bound: bool = Field(description="True when withheld cells are missing from people.")
    suppressed: bool = Field(description="True when anything behind these counts was withheld.")
    female_share: float | None = Field(None, description="female / (female + male): share of classified people.")
    male_share: float | None = None


class CorrectedShare(BaseModel):
    """The share of women corrected for the classifier's known errors (footfall.server.shares; see "Corrected
    female share" in server/API.md). ``female_share`` beside it stays the raw classify-and-count."""

    female_share_corrected: float | None = Field(
        None,
        description="Estimated share of women among people_corrected, corrected for each classifier bundle's "
        "measured decision rates (unknown people count through their expected split); null: see "
        "female_share_corrected_missing.",
    )
    female_share_low: float | None = Field(None, description="Lower end of its 95 % interval (sampling and rates).")
    female_share_high: float | None = Field(None, description="Upper end of its 95 % interval.")
    people_corrected: int = Field(
        0,
        description="People the estimate is about: those of the cells that released their split and are attributed "
        "to a classifier bundle (not cells with counts-only people).",
    )
    female_share_corrected_missing: Literal["no_classified_people", "unknown_rates", "decisions_do_not_fit"] | None = (
        Field(
            None,
            description="Why female_share_corrected is null: no_classified_people (no released split of a classified "
            "cell, or nobody in it decided female or male), unknown_rates (a bundle that decided some of them "
            "reported no decision rates), decisions_do_not_fit (the decisions are unlike any mix of the bundle's "
            "rates: a camera unlike its validation clips).",
        )
    )
    passes_per_person: float | None = Field(
        None,
        description="Over several zones: released passes per distinct person the cameras feeding them counted "
        "(one person through three zones is three passes), over the hours every such camera's count was released; "
        "the estimate takes each count as that many times fewer people, widening the sampling part of the interval "
        "by its square root. null for one zone, where no hour had every camera's count, or without an estimate.",
    )


class CountsWithShare(Counts, CorrectedShare):
    """Counts with the corrected female share of the same people."""


class SeriesPoint(CountsWithShare):
    start: str = Field(description="Bucket start, UTC ISO 8601.")
    label: str = Field(description="Bucket in the site's local time (e.g. '2026-11-20 14:00' or '2026-11-16').")
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of the bucket that a camera reported for less than the whole hour (down or started "
        "within it): their people are a lower bound of who passed. Hours whose raw buckets were deleted before the "
        "server recorded this are not counted.",
    )


class Series(BaseModel):
    site_id: str
    zones: list[str]
    granularity: str
    start: str
    end: str
    timezone: str
    k: int = Field(description="Zone × hour cells with 1 to k-1 people are withheld.")
    points: list[SeriesPoint] = Field(description="Buckets an agent reported (a quiet one as 0), oldest first.")
    totals: CountsWithShare


class AgeTable(BaseModel):
    people: int | None = Field(
        description="Released people of the bucket (all genders and bands); null when every cell with people was "
        "withheld, a lower bound when some were (people_lower_bound)."
    )
    people_lower_bound: bool = Field(description="True when withheld cells are left out of people.")
    withheld_cells: int = Field(description="Zone × hour cells with 1 to k-1 people, left out entirely.")
    bands: dict[str, dict[str, int | None]] = Field(
        description="Released people per gender decision (female, male, unknown) and age band ('0-12' ... '65+', "
        "counted so that each band follows the sum of the model's band probabilities; 'unknown': no age was "
        "estimated, or an agent older than this rule abstained). A gender's bands are released only when "
        "each is 0 or at least k; null: none of that gender's bands was released (suppressed, not 0)."
    )
    bands_withheld: dict[str, int] = Field(
        description="Per gender, people whose gender was released but whose bands were withheld."
    )
    unsplit: int = Field(description="People of cells whose gender split was withheld (so no band either).")
    audience_people: int | None = Field(
        None,
        description="With 'age' (and 'audience'): released people of that gender × band audience; null where the "
        "bands of each of its genders are suppressed.",
    )
    audience_lower_bound: bool | None = Field(
        None, description="True when people of the audience may sit in withheld cells, rows or splits."
    )


class AgePoint(AgeTable):
    start: str
    label: str


class AgeSeries(BaseModel):
    site_id: str
    zones: list[str]
    granularity: str
    start: str
    end: str
    timezone: str
    k: int
    age_estimation: bool = Field(
        description="The site's mode setting only: whether its mode ('full') asks its agents to estimate age now, "
        "not that any agent does (an agent whose bundle has no age head sends everyone as age 'unknown' while this "
        "is true); false: its people from the switch on are age 'unknown'."
    )
    audience: str | None = Field(None, description="The gender(s) of the audience asked for.")
    age: list[str] | None = Field(None, description="The bands of the audience asked for.")
    points: list[AgePoint] = Field(description="Buckets an agent reported (a quiet one as 0), oldest first.")
    totals: AgeTable


class Totals(BaseModel):
    site_id: str
    zones: list[str]
    start: str
    end: str
    k: int
    totals: CountsWithShare
    mean_dwell_seconds: float | None = Field(
        None, description="Over the zone-hours that released dwell (k people and k measured visits); else null."
    )
    hours_observed: int = Field(
        description="Zone-hours of the range an agent reported, quiet ones included. 0: nothing was reported, so its "
        "0 people are no count, not nobody."
    )
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of the range that a camera reported for less than the whole hour (down or started "
        "within it): their people are a lower bound of who passed. Hours whose raw buckets were deleted before the "
        "server recorded this are not counted.",
    )


class PeakHour(Counts):
    hour: int = Field(description="Local hour of day, 0-23.")
    label: str
    days_observed: int
    mean_people_per_day: float | None
    zone_days_unobserved: int = Field(
        0,
        description="Over several zones: days this hour was observed, times the zones that reported it in the range, "
        "less the zone-days that did. Above 0, people and the mean are lower bounds (people_lower_bound).",
    )
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of this hour of the day that a camera reported for less than the whole hour. Above 0, "
        "people and the mean are lower bounds too (not said by people_lower_bound, as everywhere).",
    )


class PeakHours(BaseModel):
    site_id: str
    zones: list[str]
    start: str
    end: str
    timezone: str
    k: int
    hours: list[PeakHour] = Field(description="Busiest first; hours with nothing released last.")


class HeatmapCell(Counts):
    hour_of_week: int = Field(description="0 = Monday 00:00-01:00 local time, 167 = Sunday 23:00-24:00.")
    weekday: str
    hour: int
    weeks_observed: int
    mean_people: float | None = Field(description="Mean people in this hour per week observed.")
    zone_weeks_unobserved: int = Field(
        0,
        description="Over several zones: weeks this hour was observed, times the zones that reported it in the range, "
        "less the zone-weeks that did. Above 0, people and the mean are lower bounds (people_lower_bound).",
    )
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of this hour of the week that a camera reported for less than the whole hour. Above "
        "0, people and the mean are lower bounds too (not said by people_lower_bound, as everywhere).",
    )


class Heatmap(BaseModel):
    site_id: str
    zones: list[str]
    start: str
    end: str
    timezone: str
    k: int
    cells: list[HeatmapCell] = Field(description="Hours of week an agent reported.")


class ZoneTotals(CountsWithShare):
    zone_id: str
    name: str
    kind: str
    floor: str | None
    share_of_traffic: float | None = Field(
        description="This zone's people / all selected zones' people; null for a zone that reported no hour."
    )
    hours_observed: int = Field(
        description="Hours of the range an agent reported for this zone, quiet ones included. 0: its camera or agent "
        "reported nothing, so its 0 people are no count, not nobody."
    )
    hours_partly_observed: int = Field(
        0,
        description="Hours of the range that a camera reported for less than the whole hour (down or started "
        "within it): their people are a lower bound of who passed. Hours whose raw buckets were deleted before the "
        "server recorded this are not counted.",
    )


class Comparison(BaseModel):
    site_id: str
    start: str
    end: str
    k: int
    zones: list[ZoneTotals] = Field(description="Busiest first.")
    totals: CountsWithShare


class Tally(BaseModel):
    """People in the released hour cells behind one figure of the visitors API (see "Privacy" in server/API.md)."""

    people: int | None = Field(description="Sum of the released cells; null when every cell with people was withheld.")
    withheld_cells: int = Field(description="Hour cells with 1 to k-1 people, left out of people.")
    people_lower_bound: bool = Field(description="True when withheld cells are missing from people.")
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of it that a camera reported for less than the whole hour (down or started within "
        "it): people is a lower bound of who passed then (not said by people_lower_bound).",
    )


class CameraTally(Tally):
    camera_id: str


class EntranceTally(Tally):
    """An entrance figure (visitors in, people out): also a lower bound where an entrance line was not observed."""

    people_lower_bound: bool = Field(description="True when withheld or unobserved cells are missing from people.")
    unobserved_cells: int = Field(
        description="Entrance zone-hours without a cell although the site reported then (or between two of the "
        "line's own hours since the same closing time): its camera or agent was down, so people are missing."
    )


class Occupancy(BaseModel):
    people: int | None = Field(
        description="Released in minus released out since the last closing time, never below 0 (a step that "
        "would go below 0 stops at 0: more people left than were counted in). Null while an entrance hour since "
        "the closing time was not observed, or while nothing released since then counted anyone and some cells "
        "were withheld."
    )
    withheld_cells: int = Field(
        description="Entrance cells withheld since the last closing time. Not a bound either way: a withheld "
        "in would raise the figure, a withheld out lower it."
    )
    unobserved_cells: int = Field(description="Entrance zone-hours not observed since the last closing time.")
    hours_partly_observed: int = Field(
        0,
        description="Entrance zone-hours since the last closing time that a camera reported for less than the whole "
        "hour (down or started within it): people who went in or out meanwhile are missing from the running sum, "
        "so people is uncertain, not a bound either way (a missed in would raise it, a missed out lower it).",
    )


class VisitorPoint(BaseModel):
    start: str = Field(description="Bucket start, UTC ISO 8601.")
    label: str = Field(description="Bucket in the site's local time.")
    visitors: EntranceTally | None = Field(
        description="Site visitors: people who came in through the site's entrance lines (their 'in' counts). "
        "Null when the site has no entrance lines."
    )
    out: EntranceTally | None = Field(
        description="People who went out through the entrance lines; null without entrances."
    )
    occupancy: Occupancy | None = Field(description="At the bucket's end; null without entrances.")
    cameras: list[CameraTally] = Field(
        description="Each camera's distinct people in the bucket (each once, whatever zones and lines they "
        "touched). Cameras overlap: never add them up to a site figure. A camera's hour is withheld while the "
        "people it saw pass any one of its zones or lines are 1 to k-1."
    )


class VisitorTotals(BaseModel):
    visitors: EntranceTally | None
    out: EntranceTally | None
    cameras: list[CameraTally]


class SharedEntrance(BaseModel):
    entrance: str = Field(description="The entrance line's id (its zones are '<id>.in' and '<id>.out').")
    cameras: list[str] = Field(description="The cameras that counted it in the range.")


class Visitors(BaseModel):
    site_id: str
    granularity: str
    start: str
    end: str = Field(description="The range's end, cut at the start of the hour in progress (not yet released).")
    timezone: str
    closing_time: str = Field(description="Local time at which occupancy starts again from 0 ('00:00': midnight).")
    k: int = Field(description="Hour cells with 1 to k-1 people are withheld.")
    entrances: list[str] = Field(description="Entrance lines of the site (they send 'in' and 'out' counts).")
    cameras: list[str] = Field(description="Cameras that send their distinct visitors.")
    visitors_note: str | None = Field(description="Why site visitors and occupancy are null, when they are.")
    shared_entrances: list[SharedEntrance] = Field(
        description="Entrance lines more than one camera counted in the range. Their counts are added up: right "
        "for two doorways given one line id, twice the visitors for one doorway that two cameras watch."
    )
    points: list[VisitorPoint] = Field(
        description="Buckets an agent reported (a quiet one as 0), and those with an entrance hour not observed, "
        "oldest first."
    )
    totals: VisitorTotals
    occupancy_at_end: Occupancy | None = Field(description="Occupancy at the range's end; null without entrances.")


class ZoneOut(BaseModel):
    zone_id: str
    site_id: str
    name: str
    floor: str | None
    kind: str
    measure: str = Field(
        "passes",
        description="What its counts are: 'passes' (a zone or counting line), 'camera' (a camera's distinct "
        "visitors), 'in' / 'out' (an entrance line's direction). Never add up counts of different measures.",
    )


class SiteOut(BaseModel):
    site_id: str
    name: str
    timezone: str
    zones: int
    agents_online: int
    agents_total: int
    demographics: DemographicsMode = Field(
        "full",
        description="'full' (counted and classified: gender, and age band where the model estimates age), "
        "'gender-only' (gender, no age estimated), 'counts-only' (no classifier) or 'off' (nothing).",
    )
    age_estimation: bool = Field(
        True,
        description="The mode's setting only: whether the site's mode ('full') asks its agents to estimate age "
        "bands, not that they do (an agent whose bundle has no age head sends everyone as age 'unknown' while this "
        "is true); false: age estimation is off (its people are counted as age 'unknown' from the switch on, and "
        "aggregates with age bands are refused).",
    )
    k: int = Field(description="The site's effective k: its own where set, else the server's (a floor).")
    own_k: int | None = Field(None, description="The k an admin set for this site; null: the server's k.")
    retention_days: int | None = Field(
        description="Days its raw minute buckets are kept: its own where set, else the server's (null: forever)."
    )
    own_retention_days: int | None = Field(None, description="Set by an admin for this site; null: the server's.")
    closing_time: str | None = Field(
        None, description="Local 'HH:MM' at which occupancy starts again from 0; null: midnight."
    )


class CameraOut(BaseModel):
    camera_id: str
    state: str
    fps: float
    error: str | None = None


class AgentOut(BaseModel):
    agent_id: str
    site_id: str
    online: bool = Field(description="Reported online and heard from within the offline threshold.")
    state: str = Field(
        description="Last state the agent reported ('online'/'offline'); 'no_status' for an agent heard from only "
        "through its aggregates."
    )
    last_seen: str
    seconds_since_seen: float
    fps: float | None = Field(description="Frames per second from its last status; null before its first status.")
    latency_ms: float | None = Field(description="Per-frame latency from its last status; null before its first.")
    outbox_depth: int | None = Field(description="Counts waiting in its outbox; null before its first status.")
    version: str
    cameras: list[CameraOut]
    models: list[ModelServing] = Field(
        default_factory=list,
        description="Each model bundle the agent serves: the precision actually served (INT8, or the FP32 "
        "reference when INT8 failed its parity self-check on the agent's CPU) and why.",
    )
    cpu: CpuInfo | None = Field(default=None, description="The agent's CPU and its instruction-set flags.")
    demographics: DemographicsMode | None = Field(
        default=None,
        description="The demographics mode the agent applies now, from its status (null: an agent older than "
        "the mode, which classifies).",
    )
    clock_ahead_s: int | None = Field(
        default=None,
        description="How many seconds the agent's clock ran ahead of the server's when its last status came (0: not "
        "ahead; null: no status since the server could tell). Counts are dated by the agent's clock: from one more "
        "than 15 minutes ahead they are deferred until the server's clock catches up, so they come late and are "
        "filed that far off.",
    )


class Slot(BaseModel):
    rank: int
    zone_id: str
    zone_name: str
    zone_kind: str
    hour_of_week: int
    weekday: str
    hour: int
    label: str
    weeks_observed: int
    people: int = Field(description="People counted in this slot over the range (released zone-hours).")
    withheld_hours: int = Field(description="Zone-hours of this slot withheld for privacy (1 to k-1 people).")
    classified: int = Field(description="People with a female/male decision, in the cells that released their split.")
    banded: int | None = Field(
        None,
        description="Age audiences only: people of the audience's gender(s) in released age bands (the sum of "
        "their released cells of bands 0-12 ... 65+), what share_raw divides by; null for a gender audience.",
    )
    age_unknown: int | None = Field(
        None,
        description="Age audiences only: people of the audience's gender(s) released as age 'unknown' (age not "
        "estimated, as by a box without an age head, or undecided). Any of them may be of the audience, so "
        "audience_count is then a lower bound; they are in no band and not in banded. Null for a gender audience.",
    )
    bands_withheld: int | None = Field(
        None,
        description="Age audiences only: people of the audience's gender(s) whose age bands were withheld (a band "
        "of theirs in a zone-hour below k); null for a gender audience.",
    )
    audience_count: int = Field(description="People decided as the target audience (raw decisions) over the range.")
    audience_lower_bound: bool | None = Field(
        None,
        description="True when people of the audience may be left out of audience_count (withheld hours; for an "
        "age audience also gender splits, age bands, or people of unknown age), so it and expected_audience are "
        "lower bounds and expected_audience_high reaches as far as what was withheld could take it.",
    )
    hours_partly_observed: int = Field(
        0,
        description="Zone-hours of this slot that a camera reported for less than the whole hour (down or started "
        "within it): its people, audience_count and expected_audience are lower bounds then (not said by "
        "audience_lower_bound), and no interval reaches for the people the camera missed. The slot ranks by what "
        "was counted all the same.",
    )
    share: float | None = Field(
        description="Target share, corrected for the classifier's known errors (see 'Corrected female share' in "
        "server/API.md); null for audience 'all', and when it cannot be corrected (share_missing says why)."
    )
    share_low: float | None = Field(description="Its 95% interval (sampling and the rates' uncertainty), lower end.")
    share_high: float | None
    share_raw: float | None = Field(
        None,
        description="Classify and count, the raw decisions: audience_count / classified for a gender audience "
        "(null for 'all'); for an age audience audience_count / banded (null when banded is 0).",
    )
    people_corrected: int = Field(
        0,
        description="People the corrected share is about (see the traffic API); 0 where nothing was corrected, "
        "as for an age audience (share_missing 'age_bands_not_corrected').",
    )
    share_missing: str | None = Field(
        None, description="Why share is null for a female/male audience: as female_share_corrected_missing."
    )
    expected_audience: float | None = Field(
        description="Expected target people per week in this slot; null for a female/male audience whose share is "
        "null (no estimate: expected_audience_low is 0 and expected_audience_high everyone in the slot), and for an "
        "age audience where no band of its gender(s) was released and their bands (or every split) were withheld "
        "(no estimate: expected_audience_low is 0 and expected_audience_high as far as the withheld people could "
        "take it). Slots without an estimate rank after every slot with one."
    )
    expected_audience_low: float
    expected_audience_high: float = Field(
        description="The upper end of the audience's interval; for an age audience never above the upper end of "
        "the slot's own people per week (withheld hours at k-1 people each)."
    )
    explanation: str


class AdPlacement(BaseModel):
    site_id: str
    audience: str
    age: list[str] | None = Field(None, description="The age bands of the audience, when one was asked for.")
    start: str
    end: str
    timezone: str
    k: int
    sort: str
    method: str
    slots: list[Slot]
    suppressed_slots: int = Field(description="Slots left out because every zone-hour of theirs was withheld.")


class IngestRejection(BaseModel):
    index: int
    reason: str
    code: RefusalCode = Field(
        "rejected",
        description="What to do about it: 'counts-only': send the same counts again without gender (the site "
        "is in counts-only mode); 'gender-only': send the same counts again without age bands (the site is in "
        "gender-only mode); 'off': the site collects nothing; 'rejected': sending it again cannot help.",
    )


class IngestDeferral(BaseModel):
    index: int
    reason: str


class IngestResponse(BaseModel):
    accepted: int = Field(description="Aggregates that created or superseded a bucket.")
    duplicates: int = Field(description="Aggregates already stored with an equal or higher seq (no effect).")
    statuses: int
    rejected: list[IngestRejection] = Field(description="Malformed messages; each is in the dead-letter table.")
    deferred: list[IngestDeferral] = Field(
        default_factory=list,
        description="Aggregates not stored yet, because their bucket starts more than 15 minutes ahead of the "
        "server's clock (at most a day: further ahead is rejected): send them again later (the agent's clock runs "
        "fast; set it right).",
    )
    site_settings: SiteSettings | None = Field(
        None,
        description="The settings of the agent's site (its demographics mode), for agents that send over HTTP: "
        "what the retained MQTT settings message tells the others. Null when the batch named no site.",
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    # PostgreSQL's text columns refuse NUL (a 500 where SQLite stored it), and no control character belongs in a
    # name shown on one line of a dashboard, a CSV cell or a log line.
    if _CONTROL.search(value):
        raise ValueError("control characters (U+0000 to U+001F, U+007F) are not allowed")
    return value


# The length is checked before the characters, so an empty name reads 'at least 1 character', not pydantic's
# generic 'at least 1 item after validation'.
KeyName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_control_characters)]
PlaceName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)]
FloorLabel = Annotated[str, Field(max_length=64), AfterValidator(_no_control_characters)]


class KeyCreate(BaseModel):
    # A misspelt binding ('site', 'agent') was dropped, and the key created bound to nothing: an agent key that may
    # write every site's cells, while the admin believed it bound (see "Privacy" in server/API.md).
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    role: str = Field(pattern="^(agent|viewer|admin|metrics)$")
    agent_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    site_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="An agent key bound to a site ingests for that site only (recommended for every agent key).",
    )


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    agent_id: str | None
    site_id: str | None = None
    created_at: str
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, store it now.")


class ZoneUpdate(BaseModel):
    # A misspelt field ('retention_day', 'K') is refused, not ignored: an admin must not believe it took effect.
    model_config = ConfigDict(extra="forbid")

    name: PlaceName | None = None
    floor: FloorLabel | None = None
    kind: str | None = Field(
        None, description="entrance, corridor, food_court, ad_slot, shop_front, exit, other, unknown"
    )


class SiteUpdate(BaseModel):
    # A misspelt field ('retention_day', 'K') is refused, not ignored: an admin must not believe it took effect.
    model_config = ConfigDict(extra="forbid")

    name: PlaceName | None = None
    timezone: str | None = Field(
        None, description="IANA time zone, e.g. 'Europe/Berlin'; day boundaries and hours of week follow it."
    )
    demographics: DemographicsMode | None = Field(
        None,
        description="'full', 'gender-only' (agents estimate no age; aggregates with age bands are refused), "
        "'counts-only' (agents load no classifier; aggregates with gender are refused) or 'off' (agents read no "
        "camera; every aggregate is refused). Sent to the site's agents at once.",
    )
    k: StrictInt | None = Field(
        None,
        description="The site's own k, from the server's k (a floor: a site can only be made stricter) to 50; "
        "null resets it to the server's. Recomputes what every hour of the site releases.",
    )
    retention_days: StrictInt | None = Field(
        None,
        description="Days the site's raw minute buckets are kept, from 1 to the server's retention; null resets it "
        "to the server's.",
    )
    closing_time: str | None = Field(
        None,
        description="Local time the site closes, 'HH:MM' (24-hour), e.g. '22:00': occupancy (in − out through the "
        "entrances) starts again from 0 then, so a day's counting drift never carries over. null: midnight.",
    )

    @model_validator(mode="after")
    def _modes_are_never_null(self) -> SiteUpdate:
        # null resets k, retention and closing time to the server's; a mode has no such default to go back to.
        if "demographics" in self.model_fields_set and self.demographics is None:
            raise ValueError("demographics: null is not a mode; give 'full', 'gender-only', 'counts-only' or 'off'")
        return self


class DeadLetterOut(BaseModel):
    id: int
    received_at: str
    source: str
    topic: str | None
    reason: str
    payload: str


class DeadLetters(BaseModel):
    total: int
    items: list[DeadLetterOut]


class IngestStats(BaseModel):
    accepted: int
    duplicates: int
    statuses: int
    rejected: int
    deferred: int = Field(
        description="Aggregates left for their agents to send again: dated more than 15 minutes ahead of the "
        "server's clock (each time one comes)."
    )
    dead_letters_total: int
    mqtt_connected: bool | None = Field(description="None when this server runs no MQTT consumer.")
