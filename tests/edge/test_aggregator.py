"""Per-zone, per-bucket counts: full counts per bucket, late relabelling and a restart's base counts."""

from __future__ import annotations

from footfall.edge.aggregation import BucketCounts, ZoneAggregator


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
