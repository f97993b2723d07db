"""Settings from the environment: the documented variables only, and what an empty one means."""

from __future__ import annotations

from pathlib import Path

import pytest
from footfall.server.settings import EMPTY_IS_A_VALUE, Settings

API_MD = Path(__file__).resolve().parents[2] / "server" / "API.md"
VARIABLES = {name: field.validation_alias for name, field in Settings.model_fields.items() if field.validation_alias}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES.values():
        monkeypatch.delenv(str(variable), raising=False)


def test_every_variable_is_in_the_api_md_table() -> None:
    table = API_MD.read_text(encoding="utf-8")
    assert [variable for variable in VARIABLES.values() if f"| `{variable}` |" not in table] == []


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("DATABASE_URL", "postgresql://u:p@db/footfall", "database_url", "postgresql://u:p@db/footfall"),
        ("MQTT_URL", "mqtt://h:1883", "mqtt_url", "mqtt://h:1883"),
        ("FOOTFALL_MQTT_GROUP", "blue", "mqtt_group", "blue"),
        ("FOOTFALL_MQTT_CLIENT_ID", "replica-2", "mqtt_client_id", "replica-2"),
        ("FOOTFALL_TOPIC_PREFIX", "shop/v1", "topic_prefix", "shop/v1"),
        ("FOOTFALL_K_ANON", "7", "k_anonymity", 7),
        ("FOOTFALL_RELEASE_OPEN_HOUR", "1", "release_open_hour", True),
        ("FOOTFALL_RELEASE_DELAY", "120", "release_delay_seconds", 120),
        ("FOOTFALL_RETENTION_DAYS", "3", "retention_days", 3),
        ("FOOTFALL_TIMEZONE", "Europe/Berlin", "default_timezone", "Europe/Berlin"),
        ("FOOTFALL_AGENT_OFFLINE_AFTER", "2.5", "agent_offline_after_s", 2.5),
        ("FOOTFALL_AUTH_FAILURES_PER_MINUTE", "0", "auth_failures_per_minute", 0),
        ("FOOTFALL_QUERY_TIMEOUT_S", "2.5", "query_timeout_s", 2.5),
        ("FOOTFALL_MAX_BUCKET_AGE_DAYS", "30", "max_bucket_age_days", 30),
        ("FOOTFALL_MAX_SITES", "20", "max_sites", 20),
        ("FOOTFALL_MAX_AGENTS", "20", "max_agents", 20),
    ],
)
def test_each_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, field: str, value: object
) -> None:
    assert VARIABLES[field] == variable
    monkeypatch.setenv(variable, text)
    assert getattr(Settings.from_env(), field) == value


def test_an_empty_variable_counts_as_unset_except_the_mqtt_group(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(EMPTY_IS_A_VALUE) == {"FOOTFALL_MQTT_GROUP"}
    defaults = Settings.from_env()
    for variable in VARIABLES.values():
        monkeypatch.setenv(str(variable), "")
    settings = Settings.from_env()
    assert settings.mqtt_group == ""  # empty = a plain subscription, not the default group
    assert settings.model_dump(exclude={"mqtt_group"}) == defaults.model_dump(exclude={"mqtt_group"})
    assert defaults.mqtt_group == "footfall-server"


def test_overrides_win_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("FOOTFALL_K_ANON", "7")
    settings = Settings.from_env(database_url=None, k_anonymity=9, mqtt_url=None)
    assert (settings.database_url, settings.k_anonymity, settings.mqtt_url) == ("sqlite:///env.db", 9, None)
    assert Settings.from_env(database_url="sqlite:///cli.db").database_url == "sqlite:///cli.db"
    assert Settings.from_env(mqtt_group="").mqtt_group == ""


def test_only_the_documented_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("database_url", "sqlite:///lower.db")  # a field's name, or another case, is not a variable
    monkeypatch.setenv("footfall_k_anon", "7")
    monkeypatch.setenv("migrate_on_start", "false")
    settings = Settings.from_env()
    assert (settings.database_url, settings.k_anonymity, settings.migrate_on_start) == (
        "sqlite:///footfall.db",
        5,
        True,
    )


def test_settings_are_frozen_and_errors_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="frozen"):
        Settings().k_anonymity = 3  # type: ignore[misc]
    monkeypatch.setenv("FOOTFALL_K_ANON", "0")
    monkeypatch.setenv("FOOTFALL_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("FOOTFALL_QUERY_TIMEOUT_S", "0")
    with pytest.raises(
        ValueError, match=r"(?s)k_anonymity.*default_timezone.*unknown time zone 'Mars/Olympus'.*query_timeout_s"
    ):
        Settings.from_env()
