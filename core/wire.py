"""Wire schema between camera boxes and the server: aggregate counts and agent status go up; receipts and
the server's "subscribed" notice come back.

Only counts cross the wire, never image data. Every aggregate carries the key the server needs for
idempotent ingest, ``(agent_id, camera_id, zone_id, bucket_start)``, and a per-agent ``seq``.
An aggregate is the *full* count of its bucket, not a delta: when an agent re-sends a bucket (a replay
after a reconnect, or an update because a late track closed), the server keeps the message with the
highest ``seq`` for that key, so redelivery never double-counts.

Delivery is confirmed end to end, not by the broker: a broker acknowledges a publish even when no
subscriber holds it (a broker restarted without the server's shared subscription, say). So the agent keeps
each aggregate until the server's :class:`Receipt` names its ``seq`` (stored, or refused with a reason),
re-sends what stays unconfirmed, and re-sends at once when a server announces with :class:`ServerOnline`
that it has (re)subscribed.

Versioning: ``schema_version`` is the major version. New dimensions (age bands, say) are added as
optional fields in a minor revision of the same major version; a server accepts every message of its
major version and ignores nothing silently, because unknown fields are rejected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from footfall.core.ages import AGE_DECISIONS, AgeDecision
from footfall.core.quantify import DecisionRates
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
# The largest message either side accepts: an aggregate is about 1 KB and a status of 64 cameras with their
# errors about 40 KB. Checked before the JSON is parsed, so a huge message costs no parsing (MQTT has no body
# limit of its own; HTTP also caps the whole batch).
MAX_MESSAGE_BYTES: Final = 1024 * 1024
DEFAULT_TOPIC_PREFIX = "footfall/v1"

# Bounds that every message is held to on both paths (MQTT and HTTP), so that no number a database or a sum
# cannot hold gets in. A camera's zone sees far fewer than a million people in one bucket (a day at most);
# seqs stay exact in a double (JavaScript, JSON tooling); a dwell longer than a day is not a dwell.
MAX_PEOPLE_PER_BUCKET = 1_000_000
MAX_SEQ = 2**53
MAX_DWELL_SECONDS = 86_400.0
MAX_FPS = 1_000.0
MAX_STATUS_CAMERAS = 64
# A bucket lies inside one hour: the server counts, releases and suppresses by the hour, and a longer bucket would
# put the people of all its hours into its first (a day's bucket read as one busy hour after midnight).
MIN_BUCKET_SECONDS = 10
MAX_BUCKET_SECONDS = 3_600
# How far ahead of the server's clock an aggregate may be dated and be stored at once. One dated further ahead (by
# at most a day) is deferred: the server's receipt says when to send it again (Receipt.deferred), and the agent
# keeps it until then.
FUTURE_TOLERANCE_S: Final = 900


def bucket_seconds_problem(seconds: int) -> str | None:
    """Why ``seconds`` cannot be a bucket's length, or None: it must divide an hour (from 10 s to 3600 s)."""
    if MAX_BUCKET_SECONDS % seconds:
        return f"{seconds} s does not divide an hour (3600 s): the server counts by the hour; try 60, 300, 900 or 3600"
    return None


# Counts are whole numbers in JSON: "5", true or 5.0 are refused rather than coerced.
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_PEOPLE_PER_BUCKET)]
Seq = Annotated[int, Strict(), Field(ge=0, le=MAX_SEQ)]

Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="Letters, digits, '_', '.', '-'; starts with a letter or digit; at most 64 characters.",
    ),
]


BundleRef = Annotated[
    str,
    Field(
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*@[A-Za-z0-9][A-Za-z0-9_.+\-]*$",
        description="A model bundle as '<name>@<version>', e.g. 'audience-v7@1.0.0'.",
    ),
]


def bundle_ref(name: str, version: str) -> str:
    """How an aggregate names a bundle (``AggregateMessage.classifier``): '<name>@<version>'."""
    return f"{name}@{version}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenderCounts(_Strict):
    """People of the bucket by the classifier's decision; ``unknown`` is an abstention, not a guess."""

    female: Count = 0
    male: Count = 0
    unknown: Count = 0

    @property
    def total(self) -> int:
        return self.female + self.male + self.unknown


class DwellStats(_Strict):
    """Time people spent in the zone, over those whose visit ended in this bucket."""

    samples: Count = Field(description="People whose dwell time was measured.")
    mean_seconds: float = Field(ge=0, le=MAX_DWELL_SECONDS, allow_inf_nan=False)


# What an aggregate's people are (minor revision; absent means "passes", all that older agents send):
# - "passes": people counted into a zone, or across a counting line in its counted direction; one person
#   passes through several zones and lines, so passes of different zones must never be added up;
# - "camera": distinct people the camera saw in the bucket, each once whatever zones and lines they touched
#   (zone_id is the camera's id);
# - "in" / "out": people crossing an entrance line inwards / outwards (zone_id is "<line>.in" / "<line>.out").
Measure = Literal["passes", "camera", "in", "out"]
MEASURES: Final[tuple[str, ...]] = ("passes", "camera", "in", "out")

# A site's demographics mode, set by the operator on the server and sent to the site's agents:
# - "full": people are counted and classified: gender, and age band where the bundle estimates age;
# - "gender-only": people are counted and their gender decided; no age is estimated (the agent runs its
#   classifier's graph pruned to the gender output) and aggregates carry no age bands;
# - "counts-only": people are counted; no classifier is loaded or run, and aggregates carry no gender;
# - "off": the agent reads no camera and counts nothing.
DemographicsMode = Literal["full", "gender-only", "counts-only", "off"]
DEMOGRAPHICS_MODES: Final[tuple[str, ...]] = ("full", "gender-only", "counts-only", "off")

GenderDecision = Literal["female", "male", "unknown"]
GENDER_DECISIONS: Final[tuple[GenderDecision, ...]] = ("female", "male", "unknown")
# People by gender decision ("unknown": the model abstained), then by the age band they were counted in
# ("unknown": their age was not estimated; see edge/band_allotment.py). A missing gender or band reads as 0.
GenderAgeCounts = dict[GenderDecision, dict[AgeDecision, Count]]


class AggregateMessage(_Strict):
    """Counts for one zone (or line, camera, entrance direction: see ``measure``) of one camera over one time
    bucket."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["aggregate"] = "aggregate"
    agent_id: Identifier
    site_id: Identifier
    camera_id: Identifier
    zone_id: Identifier
    bucket_start: AwareDatetime = Field(description="UTC start of the bucket, aligned to bucket_seconds.")
    bucket_seconds: Annotated[int, Strict()] = Field(
        ge=MIN_BUCKET_SECONDS, le=MAX_BUCKET_SECONDS, description="Bucket length in seconds; divides an hour."
    )
    seq: Seq = Field(description="Per-agent sequence; a higher seq supersedes a lower one.")
    people: Count = Field(description="Unique people counted into the zone in this bucket.")
    gender: GenderCounts | None = Field(
        description="People by the classifier's decision; null when the agent ran no classifier (a site in "
        "'counts-only' mode): then none of them was classified."
    )
    dwell: DwellStats | None = None
    # Minor revision (optional fields): what the people are, see Measure; which classifier bundle decided
    # their gender, so the server corrects each bucket's share with that bundle's decision rates.
    measure: Measure = "passes"
    classifier: BundleRef | None = Field(
        default=None, description="The gender bundle that made the decisions, '<name>@<version>'; null without gender."
    )
    # Minor revision: the same people by gender decision and age-band decision (footfall.core.ages). Absent
    # when the agent estimated no age (an older agent, a bundle without an age head, a 'gender-only' or
    # 'counts-only' site); each gender's bands add up to that gender's count.
    age: GenderAgeCounts | None = Field(
        default=None,
        description="People by gender decision, then age band ('0-12' ... '65+', or 'unknown': not estimated); each "
        "gender's bands add up to its count in 'gender'. Absent when no age was estimated.",
    )

    @field_validator("bucket_start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 lies before year 1 in UTC
            raise ValueError(f"{value.isoformat()} lies outside the calendar in UTC") from None

    @model_validator(mode="after")
    def _consistent(self) -> AggregateMessage:
        if problem := bucket_seconds_problem(self.bucket_seconds):
            raise ValueError(f"bucket_seconds: {problem}")
        if int(self.bucket_start.timestamp()) % self.bucket_seconds or self.bucket_start.microsecond:
            raise ValueError(f"bucket_start {self.bucket_start.isoformat()} is not aligned to {self.bucket_seconds} s")
        if self.gender is not None and self.gender.total != self.people:
            raise ValueError(f"gender counts add up to {self.gender.total} but people is {self.people}")
        if self.measure == "camera" and self.zone_id != self.camera_id:
            raise ValueError(f"a 'camera' aggregate's zone_id must be its camera_id {self.camera_id!r}")
        if self.measure in ("in", "out") and not self.zone_id.endswith(f".{self.measure}"):
            raise ValueError(f"an {self.measure!r} aggregate's zone_id must end in '.{self.measure}'")
        if self.gender is None and self.classifier is not None:
            raise ValueError("an aggregate without gender names no classifier")
        if self.measure != "passes" and self.dwell is not None:
            raise ValueError(f"dwell belongs to zones; a {self.measure!r} aggregate carries none")
        if self.age is not None:
            if self.gender is None:
                raise ValueError("an aggregate without gender carries no age bands")
            for decision in GENDER_DECISIONS:
                banded = sum(self.age.get(decision, {}).values())
                counted = getattr(self.gender, decision)
                if banded != counted:
                    raise ValueError(f"age bands of {decision!r} add up to {banded} but gender.{decision} is {counted}")
        return self

    def age_counts(self) -> dict[str, dict[str, int]]:
        """People per (gender decision, age decision), every cell present (0 where absent); everyone
        ``unknown`` age when the aggregate carries no bands."""
        genders = self.gender_counts
        table: dict[str, dict[str, int]] = {}
        for decision in GENDER_DECISIONS:
            row: dict[str, int] = dict.fromkeys(AGE_DECISIONS, 0)
            if self.age is not None:
                for band, count in self.age.get(decision, {}).items():
                    row[band] = count
            else:
                row["unknown"] = getattr(genders, decision)
            table[decision] = row
        return table

    @property
    def gender_counts(self) -> GenderCounts:
        """The gender counts, with everyone of an unclassified aggregate (``gender`` null) as unknown: no
        decision was made for them, which is what unknown means."""
        return self.gender if self.gender is not None else GenderCounts(unknown=self.people)

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """The idempotency key: one row per (agent, camera, zone, bucket) on the server."""
        return (self.agent_id, self.camera_id, self.zone_id, self.bucket_start)


CameraState = Literal["online", "connecting", "offline"]


Rate = Annotated[float, Field(ge=0, le=MAX_FPS, allow_inf_nan=False)]


class CameraStatus(_Strict):
    camera_id: Identifier
    state: CameraState
    fps: Rate = 0.0
    error: str | None = Field(default=None, max_length=500)


MAX_STATUS_MODELS = 8
MAX_CPU_FLAGS = 16


class ModelServing(_Strict):
    """Which precision of a model bundle the agent actually serves, and why (its parity self-check)."""

    bundle: str = Field(max_length=64, description="Bundle name from its manifest.")
    version: str = Field(default="", max_length=32)
    task: Literal["face-detection", "gender-classification"]
    precision: Literal["int8", "fp32"] = Field(description="The graph being served.")
    parity: Literal["passed", "failed", "not-checked"] = Field(
        description="The bundle's parity probe on this CPU: passed (INT8 served), failed (FP32 reference "
        "served instead), not-checked (an FP32 bundle, or one without a probe)."
    )
    probe_error: float | None = Field(default=None, ge=0, le=1e6, allow_inf_nan=False)
    tolerance: float | None = Field(default=None, ge=0, le=1e6, allow_inf_nan=False)
    reason: str | None = Field(default=None, max_length=300, description="Why this precision is served.")
    # Minor revision: a gender bundle's decision rates, from its manifest, so that the server can correct the
    # shares of the buckets that name this bundle (AggregateMessage.classifier).
    decision_rates: DecisionRates | None = None


class CpuInfo(_Strict):
    """The agent's CPU: the instruction-set flags decide which integer kernels onnxruntime runs."""

    model: str = Field(default="", max_length=128)
    arch: str = Field(default="", max_length=32)
    flags: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=MAX_CPU_FLAGS)


class AgentStatus(_Strict):
    """Heartbeat and last will of an agent, published retained on its status topic."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["status"] = "status"
    agent_id: Identifier
    site_id: Identifier
    state: Literal["online", "offline"]
    sent_at: AwareDatetime
    fps: Rate = 0.0
    latency_ms: float = Field(default=0.0, ge=0, le=3_600_000, allow_inf_nan=False)
    outbox_depth: Annotated[int, Strict(), Field(ge=0, le=10**9)] = 0
    cameras: list[CameraStatus] = Field(default_factory=list, max_length=MAX_STATUS_CAMERAS)
    version: str = Field(default="", max_length=64)
    # Minor revision (optional fields): the models served and the CPU they run on.
    models: list[ModelServing] = Field(default_factory=list, max_length=MAX_STATUS_MODELS)
    cpu: CpuInfo | None = None
    # Minor revision: the demographics mode the agent applies now (see DemographicsMode).
    demographics: DemographicsMode | None = None


MAX_RECEIPT_SEQS = 1000


# Why the server refused an aggregate, for the agent to act on (minor revision; the reason says it in words):
# - "counts-only": it carried gender for a site in counts-only mode; the agent sends the same counts again
#   without gender under a new seq, so the switch loses no count;
# - "gender-only": it carried age bands for a site in gender-only mode; the agent sends the same counts again
#   without age under a new seq;
# - "off": its site collects nothing (demographics mode 'off');
# - "rejected": anything else (malformed, outside retention, a zone's measure); sending it again cannot help.
RefusalCode = Literal["counts-only", "gender-only", "off", "rejected"]


class RefusedSeq(_Strict):
    seq: NonNegativeInt
    reason: str = Field(max_length=2000)
    code: RefusalCode = "rejected"


class DeferredSeq(_Strict):
    """An aggregate the server has not stored yet: its bucket starts more than FUTURE_TOLERANCE_S ahead of the
    server's clock (the agent's clock runs fast). Send it again in ``retry_after_s``, when the server's clock is
    within FUTURE_TOLERANCE_S of it."""

    seq: NonNegativeInt
    retry_after_s: float = Field(ge=0, le=86_400, allow_inf_nan=False)


class Receipt(_Strict):
    """Server → agent, after the transaction that handled the messages committed: the agent may forget them.

    ``stored`` seqs are held by the server (or superseded there by a higher seq of the same bucket);
    ``refused`` ones were dead-lettered for good (e.g. a bucket older than the raw-data retention) and
    re-sending them would not help. ``deferred`` ones (minor revision) are kept by the agent and sent again later;
    the server says them in receipts of their own, so that an agent older than the field, which refuses the
    receipt as malformed, still reads every receipt that confirms or refuses.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["receipt"] = "receipt"
    agent_id: Identifier
    site_id: Identifier
    stored: list[NonNegativeInt] = Field(default_factory=list, max_length=MAX_RECEIPT_SEQS)
    refused: list[RefusedSeq] = Field(default_factory=list, max_length=MAX_RECEIPT_SEQS)
    deferred: list[DeferredSeq] = Field(default_factory=list, max_length=MAX_RECEIPT_SEQS)


class ServerOnline(_Strict):
    """Server → all agents, each time a server (re)subscribed: what a broker lost may be sent again now."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["server-online"] = "server-online"
    server_id: str = Field(min_length=1, max_length=128)
    sent_at: AwareDatetime


class SiteSettings(_Strict):
    """Server → a site's agents, retained on the site's settings topic (and in each HTTP ingest response): the
    operator's choices the agents must apply. A retained message reaches an agent that connects later."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["site-settings"] = "site-settings"
    site_id: Identifier
    demographics: DemographicsMode = "full"
    sent_at: AwareDatetime


WireMessage = Annotated[AggregateMessage | AgentStatus, Field(discriminator="kind")]
_wire_adapter: TypeAdapter[AggregateMessage | AgentStatus] = TypeAdapter(WireMessage)
ServerMessage = Annotated[Receipt | ServerOnline | SiteSettings, Field(discriminator="kind")]
_server_adapter: TypeAdapter[Receipt | ServerOnline | SiteSettings] = TypeAdapter(ServerMessage)
_any_adapter: TypeAdapter[AggregateMessage | AgentStatus | Receipt | ServerOnline | SiteSettings] = TypeAdapter(
    Annotated[AggregateMessage | AgentStatus | Receipt | ServerOnline | SiteSettings, Field(discriminator="kind")]
)


class WireError(ValueError):
    """A message that does not follow the wire schema; the text names each offending field."""


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"] if p not in ("aggregate", "status")) or "message"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


_Parsed = TypeVar("_Parsed")


def _parse(payload: bytes | bytearray | str, adapter: TypeAdapter[_Parsed], kinds: str) -> _Parsed:
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise WireError(f"message is {len(raw):,} bytes; a wire message is at most {MAX_MESSAGE_BYTES:,}")
    if b"\\u0000" in raw:
        # No field holds one, and PostgreSQL's text columns refuse it (the message could not even be dead-lettered).
        raise WireError("message holds a NUL character (\\u0000), which no field may")
    try:
        data = json.loads(payload)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and integers of more than 4300 digits
        raise WireError(f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise WireError("message is nested too deeply to be a wire message") from None
    if not isinstance(data, dict):
        raise WireError(f"message must be a JSON object, got {type(data).__name__}")
    if "kind" not in data:
        raise WireError(f"kind: field required ({kinds})")
    if data.get("schema_version") not in (None, SCHEMA_VERSION):
        raise WireError(
            f"schema_version: unsupported version {data.get('schema_version')!r}, this side speaks {SCHEMA_VERSION}"
        )
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise WireError(_describe(exc)) from None


def parse_message(payload: bytes | bytearray | str) -> AggregateMessage | AgentStatus:
    """Parses one agent → server message; raises :class:`WireError` naming the offending field(s)."""
    return _parse(payload, _wire_adapter, "'aggregate' or 'status'")


def parse_server_message(payload: bytes | bytearray | str) -> Receipt | ServerOnline | SiteSettings:
    """Parses one server → agent message; raises :class:`WireError` naming the offending field(s)."""
    return _parse(payload, _server_adapter, "'receipt', 'server-online' or 'site-settings'")


def encode(message: AggregateMessage | AgentStatus | Receipt | ServerOnline | SiteSettings) -> bytes:
    # A receipt's deferred seqs (a minor revision) are left out when there are none: an agent older than the field
    # refuses any receipt that names it, and would then never see its counts confirmed.
    if isinstance(message, Receipt) and not message.deferred:
        return message.model_dump_json(exclude={"deferred"}).encode()
    return message.model_dump_json().encode()


def aggregate_topic(site_id: str, agent_id: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    return f"{prefix}/{site_id}/{agent_id}/aggregates"


def status_topic(site_id: str, agent_id: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    return f"{prefix}/{site_id}/{agent_id}/status"


def receipt_topic(site_id: str, agent_id: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    return f"{prefix}/{site_id}/{agent_id}/receipts"


def site_settings_topic(site_id: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """Retained; two levels below the prefix, so outside the servers' own filters."""
    return f"{prefix}/{site_id}/settings"


def server_online_topic(prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """Outside the servers' own filters (two levels below the prefix, theirs are three)."""
    return f"{prefix}/_servers/online"


def subscription_filters(prefix: str = DEFAULT_TOPIC_PREFIX) -> list[str]:
    """Topic filters a server subscribes to (wrap in ``$share/<group>/`` to split load between replicas)."""
    return [f"{prefix}/+/+/aggregates", f"{prefix}/+/+/status"]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every wire message, both directions, as written to docs/wire-schema.json."""
    schema = _any_adapter.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"footfall wire messages, schema_version {SCHEMA_VERSION}"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m footfall.core.wire > docs/wire-schema.json
    print(json_schema_text(), end="")
