"""Turning bucket counts into wire messages (the only thing that leaves the box)."""

from __future__ import annotations

from datetime import UTC, datetime

from footfall.core.wire import AggregateMessage
from footfall.edge.aggregation import BucketCounts


def bucket_key(camera_id: str, zone_id: str, bucket_start: int) -> str:
    return f"{camera_id}/{zone_id}/{bucket_start}"


def aggregate_message(
    *,
    agent_id: str,
    site_id: str,
    camera_id: str,
    zone_id: str,
    bucket_start: int,
    bucket_seconds: int,
    counts: BucketCounts,
    seq: int,
) -> AggregateMessage:
    return AggregateMessage(
        agent_id=agent_id,
        site_id=site_id,
        camera_id=camera_id,
        zone_id=zone_id,
        bucket_start=datetime.fromtimestamp(bucket_start, UTC),
        bucket_seconds=bucket_seconds,
        seq=seq,
        people=counts.people,
        gender=counts.gender,
        dwell=counts.dwell,
    )
