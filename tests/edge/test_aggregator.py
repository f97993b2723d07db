"""Per-zone, per-bucket counts: full counts per bucket, late relabelling and a restart's base counts."""

from __future__ import annotations

import logging

import pytest
from footfall.edge.aggregation import BucketCounts, BucketNotStored, ZoneAggregator


class FailingOutbox:
    """An :data:`Emit` whose outbox refuses every bucket while ``failing``, and keeps what it takes in ``sent``."""

    def __init__(self, error: str = "disk full"):
        self.failing = True
        self.error = error
        self.sent: list[tuple[str, int, BucketCounts]] = []

    def __call__(self, zone: str, start: int, counts: BucketCounts) -> None:
        if self.failing:
            raise BucketNotStored(self.error)
        self.sent.append((zone, start, counts))


def test_aggregator_full_counts_relabel_and_restart_base() -> None:
    sent: list[tuple[str, int, BucketCounts]] = []
    base = {("z", 60): BucketCounts(people=2, female=1, male=1)}
    aggregator = ZoneAggregator(
        ["z"], 60, lambda *m: sent.append(m), grace_seconds=3, base_lookup=lambda z, s: base.get((z, s))
    )
    aggregator.count_person(1, "z", 70, "unknown")
    aggregator.count_person(1, "z", 75, "unknown")  # the same person again: still one
    aggregator.count_person(2, "z", 80, "female")
    aggregator.flush_due(100)
    assert sent == []  # the bucket 60..120 is not over yet
    aggregator.flush_due(124)
    assert sent[-1][:2] == ("z", 60)
    assert sent[-1][2] == BucketCounts(people=4, female=2, male=1, unknown=1)
    aggregator.relabel_person(1, "male")  # a late decision re-sends the full bucket
    aggregator.add_dwell("z", 90, 12.0)
    aggregator.flush_due(130)
    assert sent[-1][2] == BucketCounts(people=4, female=2, male=2, unknown=0, dwell_samples=1, dwell_seconds_total=12.0)
    assert sent[-1][2].dwell is not None and sent[-1][2].dwell.mean_seconds == 12.0
    count = len(sent)
    aggregator.flush_due(200)
    assert len(sent) == count  # nothing changed, nothing sent


def test_a_bucket_that_cannot_be_stored_keeps_its_counts_and_goes_at_the_next_flush() -> None:
    """The outbox failing (a full disk, a lock held too long) must not cost a count: the bucket stays changed, the
    buckets after it wait their turn, and the next flush sends each with everything it holds."""
    sent: list[tuple[str, int, BucketCounts]] = []
    failing = True
    base = {("z", 0): BucketCounts(people=1, unknown=1)}  # an earlier run's part of the first bucket

    def emit(zone: str, start: int, counts: BucketCounts) -> None:
        if failing:
            raise BucketNotStored("disk full")
        sent.append((zone, start, counts))

    def lookup(zone: str, start: int) -> BucketCounts | None:
        if failing:
            raise BucketNotStored("database is locked")
        return base.get((zone, start))

    aggregator = ZoneAggregator(["z", "y"], 60, emit, grace_seconds=3, base_lookup=lookup)
    aggregator.count_person(1, "z", 10, "female")
    aggregator.count_person(2, "y", 20, "male")
    aggregator.count_person(3, "z", 70, "male")
    assert aggregator.flush_due(200) == 0
    assert all(bucket.dirty for bucket in aggregator.buckets.values())
    aggregator.count_person(4, "z", 30, "female")  # counted while the outbox fails
    failing = False
    assert aggregator.flush_due(200) == 3
    assert [(zone, start) for zone, start, _ in sent] == [("z", 0), ("y", 0), ("z", 60)], "in order, each once"
    assert sent[0][2] == BucketCounts(people=3, female=2, unknown=1), "the earlier run's count, and this run's"
    assert aggregator.flush_due(300) == 0


def test_an_outbox_that_fails_for_days_cannot_make_the_agent_hold_buckets_without_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full disk that nobody frees: every bucket stays changed and held in memory. Past the hold (a day by default)
    the oldest are dropped, with one ERROR line for the whole failure, so a camera box cannot run out of memory; what
    is younger still goes once the outbox takes it again."""
    emit = FailingOutbox()
    hold = 3600.0
    reported: list[int] = []
    now = 0.0
    aggregator = ZoneAggregator(
        ["z", "y"], 60, emit, grace_seconds=3, hold_seconds=hold, on_dropped=reported.append, clock=lambda: now
    )
    person = 0
    caplog.set_level(logging.INFO, logger="footfall.edge.aggregation")
    for minute in range(3 * 60):  # three hours of a failing outbox, one person a minute in each zone
        now = minute * 60.0
        for zone in ("z", "y"):
            person += 1
            aggregator.count_person(person, zone, now + 1, "female")
        aggregator.flush_due(now + 2)
    held = len(aggregator.buckets)
    assert held <= 2 * (hold / 60 + 2), f"{held} buckets held after three hours"
    assert len(aggregator.person_buckets) <= 2 * (hold / 60 + 2), "the dropped buckets' people are forgotten too"
    (dropped,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "dropped; free its disk" in dropped.getMessage()
    assert dropped.fields["zones"] == "y,z"  # type: ignore[attr-defined]
    assert aggregator.dropped_buckets == sum(reported) == 2 * 3 * 60 - held  # and reported to the agent's metrics
    emit.failing = False
    assert aggregator.flush_due(3 * 3600.0 + 70) == held  # the rest of the failure's buckets still go, once each
    recovered = caplog.records[-1]
    assert recovered.levelno == logging.INFO and "again" in recovered.getMessage()
    assert recovered.fields["dropped_total"] == aggregator.dropped_buckets  # type: ignore[attr-defined]
    assert len(emit.sent) == len({(zone, start) for zone, start, _ in emit.sent}) == held
    assert min(start for _, start, _ in emit.sent) >= 3 * 3600 - hold - 2 * 60, "only what is within the hold"


def test_a_jump_of_the_cameras_clock_during_a_brief_outbox_failure_drops_nothing() -> None:
    # A box without a battery boots in 1970 and sets its clock later: the buckets counted before lie years back.
    emit = FailingOutbox("database is locked")
    aggregator = ZoneAggregator(["z"], 60, emit, grace_seconds=3, clock=lambda: 5.0)  # seconds pass, not years
    aggregator.count_person(1, "z", 10, "female")
    now = 1_764_000_000.0  # the clock is set: the 1970 bucket is far beyond the hold
    aggregator.count_person(2, "z", now, "male")
    assert aggregator.flush_due(now) == 0
    assert aggregator.dropped_buckets == 0 and len(aggregator.buckets) == 2
    emit.failing = False
    assert aggregator.flush_due(now + 70) == 2
    assert [start for _, start, _ in emit.sent] == [0, aggregator.bucket_start(now)]


def test_an_outbox_that_takes_a_bucket_now_and_then_cannot_make_the_agent_hold_the_rest_without_bound() -> None:
    # A nearly full disk: one write in fifty succeeds. Each bucket's wait is its own, so the hold still bounds it.
    attempts = 0

    def emit(zone: str, start: int, counts: BucketCounts) -> None:
        nonlocal attempts
        attempts += 1
        if attempts % 50:
            raise BucketNotStored("disk full")

    hold = 3600.0
    now = 0.0
    aggregator = ZoneAggregator(["z", "y"], 60, emit, grace_seconds=3, hold_seconds=hold, clock=lambda: now)
    person = 0
    for second in range(0, 6 * 3600, 10):  # six hours, a frame every 10 s, a person a minute in each zone
        now = float(second)
        if second % 60 == 0:
            for zone in ("z", "y"):
                person += 1
                aggregator.count_person(person, zone, now + 1, "female")
        aggregator.flush_due(now)
    assert aggregator.dropped_buckets > 0
    assert len(aggregator.buckets) <= 2 * (hold / 60 + 2), f"{len(aggregator.buckets)} buckets held after six hours"
