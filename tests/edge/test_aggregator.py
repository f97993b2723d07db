"""Per-zone, per-bucket counts: full counts per bucket, late relabelling and a restart's base counts."""

from __future__ import annotations

from footfall.edge.aggregation import BucketCounts, BucketNotStored, ZoneAggregator


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
