"""Server configuration, read from environment variables (every one has a working default)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.server.catalog import DEFAULT_MAX_AGENTS, DEFAULT_MAX_SITES, DEFAULT_MAX_ZONES_PER_SITE
from footfall.server.ingest import DEFAULT_MAX_BUCKET_AGE_DAYS
from footfall.server.release import DEFAULT_K, DEFAULT_RELEASE_DELAY
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///footfall.db"
# The longest raw-data retention a site may be given when the server keeps raw buckets forever (ten years).
MAX_RETENTION_DAYS = 3650
# An empty variable counts as unset (the default applies), except these, where empty is a value of its own.
EMPTY_IS_A_VALUE = frozenset({"FOOTFALL_MQTT_GROUP"})


class Settings(BaseSettings):
    """What the server needs to run. Each field reads the environment variable its ``validation_alias`` names
    (the table in server/API.md); keyword arguments win over the environment."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,  # DATABASE_URL, never database_url
        validate_by_name=True,  # Settings(database_url=...) as well as the variable names
        loc_by_alias=False,  # errors name the field, whichever way it was given
        allow_inf_nan=False,  # 'nan' passed the range checks' comparisons and read as "should be <= 3600"
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL", description="SQLAlchemy URL (sqlite or postgresql)."
    )
    k_anonymity: int = Field(
        DEFAULT_K,
        ge=1,
        le=1000,
        validation_alias="FOOTFALL_K_ANON",
        description="Zone × hour cells with 1..k-1 people are withheld; a gender split is released only when each "
        "of its parts is 0 or at least k.",
    )
    release_open_hour: bool = Field(
        False,
        validation_alias="FOOTFALL_RELEASE_OPEN_HOUR",
        description="Answer with the hour in progress too. Live, but anyone who refreshes twice sees who came by in "
        "between; the demo turns it on.",
    )
    release_delay_seconds: int = Field(
        DEFAULT_RELEASE_DELAY,
        ge=0,
        le=86_400,
        validation_alias="FOOTFALL_RELEASE_DELAY",
        description="An ended hour is answered this many seconds after its end, once its last buckets have arrived: "
        "read at its end, it would grow by them, and two reads would show who came by in its last minutes. At least "
        "the agents' bucket length plus delivery time.",
    )
    max_zones_per_site: int = Field(
        DEFAULT_MAX_ZONES_PER_SITE,
        ge=1,
        le=1_000_000,
        validation_alias="FOOTFALL_MAX_ZONES_PER_SITE",
        description="Aggregates that would give a site more zones, lines and cameras than this are refused with the "
        "reason: each id holds a year of hourly cells and a slot row per hour of the week, so an agent naming zones "
        "by something that changes would otherwise fill the database.",
    )
    max_sites: int = Field(
        DEFAULT_MAX_SITES,
        ge=1,
        le=1_000_000,
        validation_alias="FOOTFALL_MAX_SITES",
        description="Aggregates that would give the server more sites than this are refused with the reason: an "
        "agent key not bound to a site may name any site, and one naming sites by something that changes would "
        "otherwise fill the database and slow every dashboard page.",
    )
    max_agents: int = Field(
        DEFAULT_MAX_AGENTS,
        ge=1,
        le=1_000_000,
        validation_alias="FOOTFALL_MAX_AGENTS",
        description="Statuses and aggregates that would give the server more agents than this are refused with the "
        "reason: an agent key not bound to an agent may name any agent id, and each is a row, a line of the agents "
        "list and a series in /metrics.",
    )
    max_bucket_age_days: int = Field(
        DEFAULT_MAX_BUCKET_AGE_DAYS,
        ge=1,
        le=36_500,
        validation_alias="FOOTFALL_MAX_BUCKET_AGE_DAYS",
        description="Aggregates whose bucket started more than this many days ago are refused with the reason: a "
        "box whose clock restarted at 2000-01-01 would otherwise file its counts decades back, and each such zone's "
        "running totals per hour of week would span every week in between. An agent offline longer than this loses "
        "what it counted before (its counts are refused, not stored under a wrong date).",
    )
    mqtt_url: str | None = Field(
        None, validation_alias="MQTT_URL", description="mqtt://user:pass@host:port; None = no consumer."
    )
    mqtt_group: str = Field(
        "footfall-server",
        validation_alias="FOOTFALL_MQTT_GROUP",
        description="Shared-subscription group; empty = a plain subscription, for brokers without MQTT 5 shared "
        "subscriptions (then run a single server).",
    )
    mqtt_client_id: str | None = Field(
        None, validation_alias="FOOTFALL_MQTT_CLIENT_ID", description="Stable id of this replica."
    )
    topic_prefix: str = Field(
        "footfall/v1", validation_alias="FOOTFALL_TOPIC_PREFIX", description="MQTT topics the agents publish under."
    )
    retention_days: int | None = Field(
        35,
        ge=1,
        validation_alias="FOOTFALL_RETENTION_DAYS",
        description="Raw minute buckets kept; rollups are kept forever.",
    )
    default_timezone: str = Field(
        "UTC", validation_alias="FOOTFALL_TIMEZONE", description="Time zone of auto-created sites."
    )
    agent_offline_after_s: float = Field(
        180.0,
        gt=0,
        validation_alias="FOOTFALL_AGENT_OFFLINE_AFTER",
        description="Silence after which an agent counts as offline.",
    )
    auth_failures_per_minute: int = Field(
        10,
        ge=0,
        le=100_000,
        validation_alias="FOOTFALL_AUTH_FAILURES_PER_MINUTE",
        description="Failed API-key attempts allowed per client address within a minute; after that its requests "
        "with a key get 429 until the minute frees. Counted in memory per server process (each replica holds its "
        "own). 0 = no limit.",
    )
    query_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        validation_alias="FOOTFALL_QUERY_TIMEOUT_S",
        description="Seconds each SQL statement of an API request may run before the "
        "database stops it and the request gets 503: a read waiting behind a lock (a migration, a VACUUM FULL, a "
        "LOCK TABLE left open) would otherwise hold a worker and a connection for ever.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        validation_alias="FOOTFALL_METRICS_PORT",
        description="Also serve the Prometheus metrics without a key on this port (all interfaces), for a scraper "
        "on a private network; /metrics on the main port always needs a metrics or admin key.",
    )
    migrate_on_start: bool = Field(True, description="Upgrade the database schema on start (no variable).")

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return iana_name(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the documented variables; no .env file, no secrets directory."""
        return init_settings, _Environment(settings_cls)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The environment, with ``overrides`` on top; an override of None means "not given" (a CLI option left
        out), so the variable or the default applies."""
        given: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
        return cls(**given)


class _Environment(EnvSettingsSource):
    """Only the documented variables (each field's ``validation_alias``), never a variable named like a field;
    an empty one counts as unset unless EMPTY_IS_A_VALUE names it.

    The values come back under their field's name, as keyword arguments do, so that an argument wins over a
    variable: given a variable's name next to a field's, pydantic takes the variable (and pydantic-settings 2.9
    calls the argument extra)."""

    def __call__(self) -> dict[str, Any]:
        fields = {
            field.validation_alias: name
            for name, field in self.settings_cls.model_fields.items()
            if isinstance(field.validation_alias, str)
        }
        return {
            fields[variable]: value
            for variable, value in super().__call__().items()
            if variable in fields and (value != "" or variable in EMPTY_IS_A_VALUE)
        }


# Files of a zoneinfo folder that load as a time zone but name none of the IANA database's zones: 'localtime' is
# whatever the host's /etc/localtime says (two replicas, or a rebuilt container, could file a site's days apart),
# 'posixrules' and 'Factory' are tzdata's plumbing, and the 'right/' copies count leap seconds. ('posix/' copies are
# the zones themselves: iana_name takes them by their plain name.)
NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})
NOT_IANA_FOLDERS = ("right/",)


def iana_name(name: str) -> str:
    """The zone's name as browsers know it: a ``posix/`` copy is the zone itself, and Intl.DateTimeFormat refuses the
    prefix (the dashboard threw on it). Raises ValueError, as :func:`check_timezone`, for a zone it cannot take."""
    plain = name.removeprefix("posix/")
    check_timezone(plain)
    return plain


def check_timezone(name: str) -> ZoneInfo:
    """Returns the IANA zone or raises ValueError with a clear message."""
    unknown = f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')"
    if name in NOT_IANA_ZONES or name.startswith(NOT_IANA_FOLDERS):
        raise ValueError(unknown)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder ('America'), a name too long
        raise ValueError(unknown) from None
