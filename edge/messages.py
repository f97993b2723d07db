"""Turning bucket counts into wire messages (the only thing that leaves the box)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from footfall.core.wire import AggregateMessage
from footfall.edge.aggregation import BucketCounts

if TYPE_CHECKING:
    from footfall.edge.config import AgentConfig


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

    @classmethod
    def for_camera(cls, config: AgentConfig, camera_id: str) -> CameraMessages:
        return cls(config.agent_id, config.site_id, camera_id, config.bucket_seconds)

    def message(self, zone_id: str, bucket_start: int, counts: BucketCounts, seq: int) -> AggregateMessage:
        """The full count of the bucket ``(zone_id, bucket_start)`` (epoch seconds) as sent with ``seq``."""
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
        )
