"""The wire schema: round trips, clear rejections naming the field, and the JSON Schema in docs/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from footfall.core.wire import (
    AgentStatus,
    AggregateMessage,
    DeferredSeq,
    GenderCounts,
    Receipt,
    RefusedSeq,
    SiteSettings,
    WireError,
    bundle_ref,
    encode,
    json_schema,
    json_schema_text,
    parse_message,
    parse_server_message,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

DOCS = Path(__file__).resolve().parents[2] / "docs"


def aggregate(**overrides) -> dict:
    message = {
        "schema_version": 1,
        "kind": "aggregate",
        "agent_id": "box-01",
        "site_id": "mall-a",
        "camera_id": "cam-1",
        "zone_id": "entrance",
        "bucket_start": "2026-11-23T10:15:00Z",
        "bucket_seconds": 60,
        "seq": 7,
        "people": 5,
        "gender": {"female": 3, "male": 1, "unknown": 1},
        "dwell": {"samples": 4, "mean_seconds": 12.5},
    }
    message.update(overrides)
    return message


def test_aggregate_round_trips_through_json() -> None:
    parsed = parse_message(json.dumps(aggregate()))
    assert isinstance(parsed, AggregateMessage)
    assert parsed.key == ("box-01", "cam-1", "entrance", datetime(2026, 11, 23, 10, 15, tzinfo=UTC))
    assert parse_message(encode(parsed)) == parsed


def test_status_round_trips_through_json() -> None:
    status = AgentStatus(
        agent_id="box-01",
        site_id="mall-a",
        state="online",
        sent_at=datetime(2026, 11, 23, tzinfo=UTC),
        fps=24.5,
        outbox_depth=3,
        cameras=[{"camera_id": "cam-1", "state": "online", "fps": 24.5}],
    )
    assert parse_message(encode(status)) == status


def test_bucket_start_in_another_zone_is_normalised_to_utc() -> None:
    parsed = parse_message(json.dumps(aggregate(bucket_start="2026-11-23T11:15:00+01:00")))
    assert parsed.bucket_start == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"gender": {"female": -1, "male": 1, "unknown": 5}}, "gender.female"),
        ({"people": "many"}, "people"),
        ({"zone_id": "zone with spaces"}, "zone_id"),
        ({"bucket_start": "2026-11-23T10:15:30Z"}, "not aligned"),
        ({"bucket_start": "2026-11-23T10:15:00"}, "bucket_start"),
        ({"bucket_seconds": 7}, "bucket_seconds"),
        ({"bucket_seconds": 700}, "does not divide an hour"),
        # A day's bucket (it divides a day) would land whole in its first hour: the server counts by the hour.
        ({"bucket_seconds": 7200, "bucket_start": "2026-11-23T10:00:00Z"}, "bucket_seconds"),
        ({"bucket_seconds": 86400, "bucket_start": "2026-11-23T00:00:00Z"}, "bucket_seconds"),
        ({"people": 6}, "add up to 5 but people is 6"),
        ({"image": "aGVsbG8="}, "image"),
        ({"seq": None}, "seq"),
        ({"kind": "frame"}, "kind"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_malformed_aggregate_is_rejected_naming_the_field(change: dict, named: str) -> None:
    with pytest.raises(WireError, match=named.replace(".", r"\.")):
        parse_message(json.dumps(aggregate(**change)))


def test_missing_field_is_named() -> None:
    message = aggregate()
    del message["camera_id"]
    with pytest.raises(WireError, match="camera_id: Field required"):
        parse_message(json.dumps(message))


@pytest.mark.parametrize("payload", [b"", b"{", b"\xff\xfe", b"[1, 2]", b'"text"', b'{"agent_id": "x"}'])
def test_garbage_is_rejected_with_a_reason(payload: bytes) -> None:
    with pytest.raises(WireError) as caught:
        parse_message(payload)
    assert str(caught.value)


@given(
    female=st.integers(0, 10_000),
    male=st.integers(0, 10_000),
    unknown=st.integers(0, 10_000),
    minute=st.integers(0, 60 * 24 * 365),
    seq=st.integers(0, 2**53),
)
def test_any_valid_aggregate_round_trips(female: int, male: int, unknown: int, minute: int, seq: int) -> None:
    message = AggregateMessage(
        agent_id="a",
        site_id="s",
        camera_id="c",
        zone_id="z",
        bucket_start=datetime.fromtimestamp(1_700_000_040 + minute * 60, UTC),
        bucket_seconds=60,
        seq=seq,
        people=female + male + unknown,
        gender=GenderCounts(female=female, male=male, unknown=unknown),
    )
    assert parse_message(encode(message)) == message


def test_docs_json_schema_matches_the_code() -> None:
    written = (DOCS / "wire-schema.json").read_text()
    assert written == json_schema_text(), "regenerate with: footfall schema wire > docs/wire-schema.json"


def test_json_schema_accepts_a_valid_message_and_rejects_a_bad_one() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(aggregate())
    bad = aggregate(gender={"female": -1, "male": 0, "unknown": 0})
    assert not validator.is_valid(bad)


# Issue #15: numbers no database column or sum can hold, coerced types and deep nesting are refused with the
# field named, on both paths (MQTT and HTTP parse with this function).
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"people": 2**63, "gender": {"female": 2**63, "male": 0, "unknown": 0}}, "people"),
        ({"people": 2**63 - 1, "gender": {"female": 2**63 - 1, "male": 0, "unknown": 0}}, "people"),
        ({"people": 2**64, "gender": {"female": 2**64, "male": 0, "unknown": 0}}, "gender.female"),
        ({"people": 2**62, "gender": {"female": 2**62, "male": 0, "unknown": 0}}, "gender.female"),
        ({"seq": 2**63}, "seq"),
        ({"dwell": {"samples": 1, "mean_seconds": float("inf")}}, "dwell.mean_seconds"),
        ({"dwell": {"samples": 1, "mean_seconds": 1e308}}, "dwell.mean_seconds"),
        ({"people": "5"}, "people"),
        ({"people": True}, "people"),
        ({"people": 5.0}, "people"),
        ({"seq": "7"}, "seq"),
    ],
)
def test_out_of_range_or_coerced_numbers_are_refused(overrides: dict, field: str) -> None:
    with pytest.raises(WireError, match=rf"(^|; ){field}: "):
        parse_message(json.dumps(aggregate(**overrides)))


def test_the_largest_counts_and_seq_are_accepted() -> None:
    message = parse_message(
        json.dumps(aggregate(people=10**6, gender={"female": 10**6, "male": 0, "unknown": 0}, seq=2**53))
    )
    assert message.people == 10**6 and message.seq == 2**53


def test_deep_nesting_is_a_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(WireError, match="nested too deeply"):
        parse_message("[" * 5000 + "]" * 5000)


def test_a_status_cannot_carry_an_unbounded_camera_list() -> None:
    status = {
        "kind": "status",
        "agent_id": "box-01",
        "site_id": "mall-a",
        "state": "online",
        "sent_at": "2026-11-23T10:15:00Z",
        "cameras": [{"camera_id": f"c{i}", "state": "online"} for i in range(15_000)],
    }
    with pytest.raises(WireError, match="cameras: List should have at most 64 items"):
        parse_message(json.dumps(status))


def test_an_aggregate_of_an_older_agent_counts_passes() -> None:
    parsed = parse_message(json.dumps(aggregate()))
    assert isinstance(parsed, AggregateMessage)
    assert parsed.measure == "passes"


def test_an_unclassified_aggregate_carries_null_gender_and_counts_everyone_as_undecided() -> None:
    parsed = parse_message(json.dumps(aggregate(gender=None)))
    assert isinstance(parsed, AggregateMessage)
    assert parsed.gender is None
    assert parsed.gender_counts == GenderCounts(unknown=5)
    with pytest.raises(WireError, match="gender"):
        parse_message(json.dumps({k: v for k, v in aggregate().items() if k != "gender"}))  # null, not absent


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"measure": "camera", "dwell": None}, "camera_id"),
        ({"measure": "in", "zone_id": "door", "dwell": None}, ".in"),
        ({"measure": "out", "zone_id": "door.in", "dwell": None}, ".out"),
        ({"measure": "in", "zone_id": "door.in"}, "dwell"),
        ({"measure": "visitors"}, "measure"),
    ],
)
def test_measures_name_their_zone_as_the_schema_says(overrides: dict, named: str) -> None:
    with pytest.raises(WireError, match=named.replace(".", r"\.")):
        parse_message(json.dumps(aggregate(**overrides)))


def test_camera_and_entrance_aggregates_are_accepted() -> None:
    for overrides in (
        {"measure": "camera", "zone_id": "cam-1", "dwell": None},
        {"measure": "in", "zone_id": "door.in", "dwell": None},
        {"measure": "out", "zone_id": "door.out", "dwell": None, "gender": None},
    ):
        parsed = parse_message(json.dumps(aggregate(**overrides)))
        assert isinstance(parsed, AggregateMessage)
        assert parsed.measure == overrides["measure"]


def test_site_settings_round_trip_and_refuse_an_unknown_mode() -> None:
    settings = SiteSettings(site_id="mall-a", demographics="counts-only", sent_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert parse_server_message(encode(settings)) == settings
    with pytest.raises(WireError, match="demographics"):
        parse_server_message(settings.model_dump_json().replace("counts-only", "faces"))


def test_an_aggregate_names_the_bundle_that_decided_its_gender() -> None:
    parsed = parse_message(json.dumps(aggregate(classifier="audience-v4@1.0.0")))
    assert isinstance(parsed, AggregateMessage) and parsed.classifier == "audience-v4@1.0.0"
    older = parse_message(json.dumps(aggregate()))  # older agents name none
    assert isinstance(older, AggregateMessage) and older.classifier is None
    for bad in ("audience-v4", "@1.0", "gender v3@1"):
        with pytest.raises(WireError, match="classifier"):
            parse_message(json.dumps(aggregate(classifier=bad)))
    with pytest.raises(WireError, match="names no classifier"):
        parse_message(json.dumps(aggregate(gender=None, classifier="audience-v4@1.0.0")))


def test_a_status_carries_the_gender_bundles_decision_rates_for_the_servers_correction() -> None:
    rates = {"female": {"female": 90, "male": 6, "unknown": 4}, "male": {"female": 3, "male": 95, "unknown": 2}}
    model = {"bundle": "audience-v4", "version": "1.0.0", "task": "gender-classification", "precision": "int8"}
    status = {
        "kind": "status",
        "agent_id": "box-01",
        "site_id": "mall-a",
        "state": "online",
        "sent_at": "2026-11-23T10:15:00Z",
        "models": [{**model, "parity": "passed", "decision_rates": {"counts": rates}}],
    }
    parsed = parse_message(json.dumps(status))
    assert isinstance(parsed, AgentStatus)
    served = parsed.models[0]
    assert served.decision_rates is not None and served.decision_rates.recall()["female"] == pytest.approx(0.9)
    assert bundle_ref(served.bundle, served.version) == "audience-v4@1.0.0"
    status["models"][0]["decision_rates"] = {"counts": {"female": rates["female"]}}  # type: ignore[index]
    with pytest.raises(WireError, match="decision_rates"):
        parse_message(json.dumps(status))


def test_a_receipt_without_deferred_seqs_is_what_an_agent_older_than_them_parses() -> None:
    """Found in review: every receipt carried "deferred": [], which an agent older than the field refuses (its models
    forbid unknown fields), so after a server upgrade no older agent saw a count confirmed again."""

    class ReceiptBeforeDeferrals(BaseModel):  # core.wire.Receipt as agents before the field have it
        model_config = ConfigDict(extra="forbid")
        schema_version: Literal[1] = 1
        kind: Literal["receipt"] = "receipt"
        agent_id: str
        site_id: str
        stored: list[int] = []
        refused: list[RefusedSeq] = []

    plain = encode(Receipt(agent_id="box-1", site_id="mall", stored=[7], refused=[RefusedSeq(seq=8, reason="old")]))
    assert ReceiptBeforeDeferrals.model_validate_json(plain).stored == [7]
    deferring = encode(Receipt(agent_id="box-1", site_id="mall", deferred=[DeferredSeq(seq=9, retry_after_s=60)]))
    assert parse_server_message(deferring).deferred == [DeferredSeq(seq=9, retry_after_s=60)]
