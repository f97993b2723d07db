"""Server configuration, read from environment variables (every one has a working default)."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.server.release import DEFAULT_K
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_DATABASE_URL = "sqlite:///footfall.db"


class Settings(BaseModel):
    """What the server needs to run; ``Settings.from_env()`` reads the documented environment variables."""

    model_config = ConfigDict(frozen=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, description="DATABASE_URL: SQLAlchemy URL (sqlite or postgresql).")
    k_anonymity: int = Field(
        DEFAULT_K,
        ge=1,
        le=1000,
        description="FOOTFALL_K_ANON: zone × hour cells with 1..k-1 people are withheld; a gender split is released "
        "only when each of its parts is 0 or at least k.",
    )
    release_open_hour: bool = Field(
        False,
        description="FOOTFALL_RELEASE_OPEN_HOUR: answer with the hour in progress too. Live, but anyone who "
        "refreshes twice sees who came by in between; the demo turns it on.",
    )
    mqtt_url: str | None = Field(None, description="MQTT_URL: mqtt://user:pass@host:port; None = no consumer.")
    mqtt_group: str = Field(
        "footfall-server",
        description="FOOTFALL_MQTT_GROUP: shared-subscription group; empty = a plain subscription, for "
        "brokers without MQTT 5 shared subscriptions (then run a single server).",
    )
    mqtt_client_id: str | None = Field(None, description="FOOTFALL_MQTT_CLIENT_ID: stable id of this replica.")
    topic_prefix: str = Field("footfall/v1", description="FOOTFALL_TOPIC_PREFIX.")
    retention_days: int | None = Field(
        35, ge=1, description="FOOTFALL_RETENTION_DAYS: raw minute buckets kept; rollups are kept forever."
    )
    default_timezone: str = Field("UTC", description="FOOTFALL_TIMEZONE: time zone of auto-created sites.")
    agent_offline_after_s: float = Field(
        180.0,
        gt=0,
        description="FOOTFALL_AGENT_OFFLINE_AFTER: silence after which an agent counts as offline.",
    )
    auth_failures_per_minute: int = Field(
        10,
        ge=0,
        le=100_000,
        description="FOOTFALL_AUTH_FAILURES_PER_MINUTE: failed API-key attempts allowed per client address within "
        "a minute; after that its requests with a key get 429 until the minute frees. Counted in memory per server "
        "process (each replica holds its own). 0 = no limit.",
    )
    migrate_on_start: bool = True

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        mapping = {
            "DATABASE_URL": "database_url",
            "FOOTFALL_K_ANON": "k_anonymity",
            "FOOTFALL_RELEASE_OPEN_HOUR": "release_open_hour",
            "MQTT_URL": "mqtt_url",
            "FOOTFALL_MQTT_GROUP": "mqtt_group",
            "FOOTFALL_MQTT_CLIENT_ID": "mqtt_client_id",
            "FOOTFALL_TOPIC_PREFIX": "topic_prefix",
            "FOOTFALL_RETENTION_DAYS": "retention_days",
            "FOOTFALL_TIMEZONE": "default_timezone",
            "FOOTFALL_AGENT_OFFLINE_AFTER": "agent_offline_after_s",
            "FOOTFALL_AUTH_FAILURES_PER_MINUTE": "auth_failures_per_minute",
        }
        for variable, field in mapping.items():
            if env.get(variable) or (variable == "FOOTFALL_MQTT_GROUP" and variable in env):
                values[field] = env[variable]
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def check_timezone(name: str) -> ZoneInfo:
    """Returns the IANA zone or raises ValueError with a clear message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None
