"""Aggregates name the gender bundle that decided their people (so the server corrects each bucket's share with
that bundle's decision rates), and name none when they carry no gender (counts-only): what the agent queues
must parse on the server, whose schema refuses a classifier without gender."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from footfall.core.classifier import GenderClassifier
from footfall.core.detector import FaceDetector
from footfall.core.wire import AggregateMessage, parse_message
from footfall.edge.aggregation import BucketCounts
from footfall.edge.messages import CameraMessages, classifier_ref

from tests.edge.standin import build_standin_gender_bundle

BUCKET = 1_763_280_000


def _classifier(name: str, version: str) -> GenderClassifier:
    """What classifier_ref reads of a loaded classifier: its bundle's manifest."""
    manifest = SimpleNamespace(name=name, version=version)
    return cast(GenderClassifier, SimpleNamespace(bundle=SimpleNamespace(manifest=manifest)))


def test_the_reference_is_name_at_version_and_always_valid_on_the_wire() -> None:
    assert classifier_ref(None) is None
    assert classifier_ref(_classifier("audience-v4", "1.0.0")) == "audience-v4@1.0.0"
    # A hand-made bundle's name may hold anything; what the message carries must still parse.
    odd = classifier_ref(_classifier(".my bundle/ä", "v 2+local"))
    assert odd == "my-bundle--@v-2+local"
    long = classifier_ref(_classifier("x" * 200, "1" * 200))
    assert long is not None and len(long) <= 100
    messages = CameraMessages("box", "lab", "cam1", 60)
    for ref in (odd, long):
        message = messages.message("door", BUCKET, BucketCounts(people=1, female=1), 1, classifier=ref)
        assert parse_message(message.model_dump_json().encode()).classifier == ref


def test_agent_names_its_classifier_and_none_once_counts_only(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from footfall.core.wire import SiteSettings
    from footfall.edge.agent import Agent
    from footfall.edge.config import AgentConfig, CameraConfig
    from footfall.edge.outbox import Outbox
    from footfall.edge.pipeline import Models

    bundle = build_standin_gender_bundle(tmp_path / "gender-standin")
    config = AgentConfig(
        agent_id="box-test",
        site_id="lab",
        cameras=[CameraConfig(id="cam1", source="http://127.0.0.1/stream.mjpg")],
        outbox={"path": tmp_path / "outbox.sqlite"},  # type: ignore[arg-type]
    )
    agent = Agent(config, models=Models(cast(FaceDetector, None), GenderClassifier(bundle)))
    agent.outbox = Outbox(tmp_path / "outbox.sqlite")

    def queued() -> list[AggregateMessage]:
        assert agent.outbox is not None
        parsed = [parse_message(row.payload) for row in agent.outbox.pending()]  # the server's own parse
        return [m for m in parsed if isinstance(m, AggregateMessage)]

    emit = agent._emitter("cam1")
    emit("door", BUCKET, BucketCounts(people=3, female=1, male=1, unknown=1))
    [full] = queued()
    assert full.gender is not None and full.classifier == "gender-standin@0.0.0"

    # Counts-only: the unconfirmed row is sent again without gender, and without naming a classifier.
    told = SiteSettings(site_id="lab", demographics="counts-only", sent_at=full.bucket_start)
    agent._on_settings(told)
    agent._strip_outbox()  # what the main loop does next
    emit("door", BUCKET + 60, BucketCounts(people=2, male=2))
    rows = queued()
    assert len(rows) == 2
    assert all(m.gender is None and m.classifier is None for m in rows), [(m.gender, m.classifier) for m in rows]
    agent.outbox.close()
