"""Turning bucket counts into wire messages (the only thing that leaves the box)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from footfall.core.wire import AggregateMessage, Measure, bundle_ref
from footfall.edge.aggregation import BucketCounts

if TYPE_CHECKING:
    from footfall.core.classifier import GenderClassifier
    from footfall.edge.config import AgentConfig

_NOT_IN_REF = re.compile(r"[^A-Za-z0-9_.+\-]")


def classifier_ref(classifier: GenderClassifier | None) -> str | None:
    """How aggregates name the gender bundle that decided their people ('<name>@<version>', see
    core.wire.bundle_ref), so the server corrects their share with that bundle's decision rates; None when no
    classifier runs. Characters a reference may not hold (a hand-made bundle's name) become '-'."""
    if classifier is None:
        return None
    manifest = classifier.bundle.manifest
    name = _NOT_IN_REF.sub("-", manifest.name).lstrip("-_.+") or "bundle"
    version = _NOT_IN_REF.sub("-", manifest.version).lstrip("-_.+") or "0"
    return bundle_ref(name[:60], version[:39])


def bucket_key(camera_id: str, zone_id: str, bucket_start: int) -> str:
    return f"{camera_id}/{zone_id}/{bucket_start}"


@dataclass(frozen=True)
class CameraMessages:
    """The aggregate messages of one camera: what they all share (agent, site, camera, bucket length) is
    bound once; :meth:`message` adds what an aggregator bucket emits (zone, start, counts) and the seq."""

    agent_id: str
    site_id: str
    camera_id: str
    bucket_seconds: int
    # What each zone id counts (CameraConfig.measures); an id not in it counts passes.
    measures: Mapping[str, Measure] = field(default_factory=dict)

    @classmethod
    def for_camera(cls, config: AgentConfig, camera_id: str) -> CameraMessages:
        measures = next((c.measures() for c in config.cameras if c.id == camera_id), {})
        return cls(config.agent_id, config.site_id, camera_id, config.bucket_seconds, measures)

    def message(
        self, zone_id: str, bucket_start: int, counts: BucketCounts, seq: int, *, classifier: str | None = None
    ) -> AggregateMessage:
        """The full count of the bucket ``(zone_id, bucket_start)`` (epoch seconds) as sent with ``seq``;
        ``classifier`` names the gender bundle that decided its people (:func:`classifier_ref`); the people
        by gender and age band go along only when their age was estimated (``counts.age``)."""
        return AggregateMessage(
            agent_id=self.agent_id,
            site_id=self.site_id,
            camera_id=self.camera_id,
            zone_id=zone_id,
            bucket_start=datetime.fromtimestamp(bucket_start, UTC),
            bucket_seconds=self.bucket_seconds,
            seq=seq,
            people=counts.people,
            gender=counts.gender,
            dwell=counts.dwell,
            measure=self.measures.get(zone_id, "passes"),
            classifier=classifier,
            age=counts.age_table(),
        )
