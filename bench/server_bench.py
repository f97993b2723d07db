"""Server benchmarks: ingest rate (SQLite, PostgreSQL; direct and through a real mosquitto) and API latency
(p95 of the 90-day hourly series of one zone and of the ad-placement ranking) on a year of data for 200 zones.

    .venv/bin/python bench/server_bench.py            # everything (PostgreSQL started from Debian's binaries)
    .venv/bin/python bench/server_bench.py --quick    # smaller sizes
    DATABASE_URL=postgresql://... .venv/bin/python bench/server_bench.py   # an existing PostgreSQL

Dataset honesty: a year of minute buckets for 200 zones is ~105 M raw rows, more than this benchmark
builds. The API answers hour/day/week queries and the ranking from the rollups only, so the benchmark builds
the rollups at full size (200 zones × 8,760 hours = 1.75 M hourly rows, with what each releases at k = 5,
73,000 daily rows, 1.78 M running slot totals) exactly as ingest would leave them, and measures ingest
separately on raw minute buckets. The CSV export of a year of hourly rows for 24 zones (210,240 rows) is
measured against a real server process: its memory while it streams, and how fast it answers other requests
meanwhile; an admin's change of the site's k (every hour seen, so the rule applies to what readers saw), which the
site's ingest waits for; and a time-zone change of the whole site: its length and its longest transaction.

Age bands: every hourly cell is also split into gender × age-band cells (``rollup_hourly_age``), which the
age-pyramid and band-audience reads sum hour by hour: over the last 90 days (``--age-days``) into 8 bands and
'unknown' per gender decision (up to 27 cells per zone-hour), before that all age 'unknown' (agents that did
not estimate age yet; 3 cells). Their read latencies are measured over those 90 days.

Cameras: 50, each watching four neighbouring zones, with its parts of each zone-hour (``rollup_camera_parts``) and
its distinct visitors (half its zones' passes), so that multi-zone reads pay for their passes per person and the
release after a change of k for withholding cameras whose parts are hidden.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from footfall.server.db import Database  # noqa: E402
from footfall.server.ingest import Incoming, Ingestor  # noqa: E402
from footfall.server.migrate import upgrade  # noqa: E402
from footfall.server.release import DEFAULT_K  # noqa: E402
from footfall.server.rollups import ensure_release  # noqa: E402
from sqlalchemy import text  # noqa: E402

ZONES = 200
# A year of data that ended within the last week: ingest refuses buckets older than FOOTFALL_MAX_BUCKET_AGE_DAYS
# (400) or in the future, so the year moves with the calendar. It starts on a Monday, 53 weeks before this one's.
_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = _TODAY - timedelta(days=_TODAY.weekday(), weeks=53)


def _messages(count: int, seed: int = 1, offset_minutes: int = 0) -> list[bytes]:
    """Minute aggregates for 200 zones (one camera each, 4 zones per agent), time-major like live traffic."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        minute, zone = divmod(i, ZONES)
        minute += offset_minutes
        female, male, unknown = (int(v) for v in rng.integers(0, 12, 3))
        out.append(
            json.dumps(
                {
                    "kind": "aggregate",
                    "agent_id": f"agent-{zone // 4:03d}",
                    "site_id": "mall",
                    "camera_id": f"cam-{zone}",
                    "zone_id": f"zone-{zone:03d}",
                    "bucket_start": (START + timedelta(minutes=minute)).isoformat(),
                    "bucket_seconds": 60,
                    "seq": minute,
                    "people": female + male + unknown,
                    "gender": {"female": female, "male": male, "unknown": unknown},
                }
            ).encode()
        )
    return out


def bench_ingest(url: str, label: str, count: int, batch: int = 500) -> dict[str, float]:
    db = Database(url)
    upgrade(db.engine)
    ingestor = Ingestor(db)
    messages = _messages(count)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, count, batch):
        ingestor.ingest([Incoming(m, "bench") for m in messages[i : i + batch]])
    new_rate = count / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / count * 1e6
    started = time.perf_counter()
    for i in range(0, count, batch):  # replay everything: all duplicates
        ingestor.ingest([Incoming(m, "bench") for m in messages[i : i + batch]])
    replay_rate = count / (time.perf_counter() - started)
    counters = ingestor.counters.snapshot()
    assert counters["accepted"] == count and counters["duplicates"] == count, counters
    db.dispose()
    print(
        f"ingest  {label:10s} direct, batches of {batch}: {new_rate:8,.0f} new msg/s, {replay_rate:8,.0f} "
        f"replayed msg/s ({count:,} messages; this process's CPU: {cpu_us:.0f} µs per new message)"
    )
    return {"new": new_rate, "replay": replay_rate}


PUBLISHER = r"""
import sys, time, paho.mqtt.client as mqtt
port, path = int(sys.argv[1]), sys.argv[2]
lines = open(path, 'rb').read().split(b'\n')
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id='bench-agent', protocol=mqtt.MQTTv5)
client.max_inflight_messages_set(1000)
client.max_queued_messages_set(0)
client.connect('127.0.0.1', port)
client.loop_start()
infos = []
for line in lines:
    site_agent = line.split(b'"agent_id": "')[1].split(b'"')[0].decode()
    infos.append(client.publish(f'footfall/v1/mall/{site_agent}/aggregates', line, qos=1))
for info in infos:
    info.wait_for_publish(60)
client.disconnect(); client.loop_stop()
"""


def bench_mqtt(url: str, label: str, count: int) -> float:
    """Server side of MQTT ingest: the broker holds ``count`` queued QoS 1 messages for the server's
    persistent session (published while it was down, by a separate process); the rate is how fast the
    consumer drains them into the database, acknowledging each batch after its commit."""
    from footfall.server.mqtt_consumer import MqttConsumer

    from footfall.broker import MosquittoBroker

    db = Database(url)
    upgrade(db.engine)
    with db.write() as session:
        session.execute(text("DELETE FROM buckets"))
    broker = MosquittoBroker().start()
    consumer = MqttConsumer(broker.url, Ingestor(db), client_id="bench-server").start()
    consumer.wait_connected()
    time.sleep(0.3)
    consumer.stop()  # the session (and its subscription) stays in the broker
    payload_file = Path(tempfile.mkdtemp()) / "messages.txt"
    payload_file.write_bytes(b"\n".join(_messages(count, seed=2, offset_minutes=100_000)))
    subprocess.run([sys.executable, "-c", PUBLISHER, str(broker.port), str(payload_file)], check=True, timeout=300)
    started, cpu = time.perf_counter(), time.process_time()
    consumer = MqttConsumer(broker.url, Ingestor(db), client_id="bench-server").start()
    stored = 0
    while stored < count and time.perf_counter() - started < 300:
        time.sleep(0.05)
        with db.engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM buckets")).scalar()
    elapsed = time.perf_counter() - started
    cpu_us = (time.process_time() - cpu) / max(stored, 1) * 1e6
    consumer.stop()
    broker.stop()
    db.dispose()
    rate = stored / elapsed
    print(
        f"ingest  {label:10s} MQTT: mosquitto → consumer → DB, QoS 1 acked after commit: {rate:8,.0f} msg/s "
        f"({stored:,}/{count:,} queued messages stored in {elapsed:.1f} s, incl. connect; this process's "
        f"CPU: {cpu_us:.0f} µs per message)"
    )
    return rate


# The gender bundle that decided every cell of the query dataset, with decision rates that fit how the dataset
# splits people (women always decided female; a tenth of men undecided): so every female share is corrected,
# the costliest path of each read.
BENCH_CLASSIFIER = "bench-gender@1"
BENCH_RATES = {"female": {"female": 1000, "male": 0, "unknown": 0}, "male": {"female": 0, "male": 900, "unknown": 100}}


# Each gender decision's people split across age decisions (footfall.core.ages.AGE_DECISIONS) in these per-mille
# proportions, a mall's daytime mix; the cumulative per-mille edges make every gender's bands add up to its count.
BENCH_BAND_PERMILLE = {
    "0-12": 70, "13-17": 50, "18-24": 140, "25-34": 200, "35-44": 180,
    "45-54": 140, "55-64": 110, "65+": 80, "unknown": 30,
}  # fmt: skip


def _band_cells_sql(since_hour: int, until_hour: int, permille: dict[str, int]) -> str:
    """INSERT of the age cells of the hourly cells from ``since_hour`` until ``until_hour``, each gender's people
    split across age decisions in ``permille`` proportions (cumulative edges: the bands add up to the count)."""
    edges, low = [], 0
    for band, share in permille.items():
        edges.append(f"SELECT '{band}' AS band, {low} AS lo, {low + share} AS hi")
        low += share
    count = "CASE g.gender WHEN 'female' THEN h.female WHEN 'male' THEN h.male ELSE h.unknown END"
    people = f"({count}) * b.hi / 1000 - ({count}) * b.lo / 1000"
    return (
        "INSERT INTO rollup_hourly_age (zone_pk, hour_start, gender, band, people, released_people) "
        f"SELECT h.zone_pk, h.hour_start, g.gender, b.band, {people}, 0 FROM rollup_hourly h "
        "CROSS JOIN (SELECT 'female' AS gender UNION ALL SELECT 'male' UNION ALL SELECT 'unknown') g "
        f"CROSS JOIN ({' UNION ALL '.join(edges)}) b "
        f"WHERE h.hour_start >= {since_hour} AND h.hour_start < {until_hour} AND {people} > 0"
    )


CAMERA_ZONES = 4  # zones each bench camera watches


def build_year(url: str, zones: int, days: int, age_days: int) -> None:
    """Hourly and daily rollups for ``zones`` zones over ``days`` days, with a daily and weekly rhythm, each cell
    decided by one gender bundle with known decision rates; the last ``age_days`` days also split by age band."""
    db = Database(url)
    upgrade(db.engine)
    rng = np.random.default_rng(3)
    first_hour = int(START.timestamp())
    hours = np.arange(days * 24)
    hour_of_day = hours % 24
    weekday = ((hours // 24) + START.weekday()) % 7
    rhythm = np.clip(np.sin((hour_of_day - 7) / 14 * np.pi), 0, None) * (1.4 - 0.1 * (weekday < 5) * 3)
    with db.write() as session:
        session.execute(
            text(
                "INSERT INTO sites (site_id, name, timezone, created_at) VALUES ('mall', 'Mall', 'UTC', 0) "
                "ON CONFLICT DO NOTHING"
            )
        )
        session.execute(
            text(
                "INSERT INTO zones (site_id, zone_id, name, floor, kind, created_at) VALUES "
                + ",".join(
                    f"('mall', 'zone-{z:03d}', 'Zone {z}', 'L{z % 3}', '{'ad_slot' if z % 5 == 0 else 'corridor'}', 0)"
                    for z in range(zones)
                )
                + " ON CONFLICT DO NOTHING"
            )
        )
        pks = [r[0] for r in session.execute(text("SELECT id FROM zones ORDER BY zone_id"))]
    started = time.perf_counter()
    for pk in pks:
        scale = rng.uniform(50, 400)
        people = rng.poisson(rhythm * scale)
        female = rng.binomial(people, rng.uniform(0.3, 0.7))
        unknown = rng.binomial(people - female, 0.1)
        male = people - female - unknown
        how = (weekday * 24 + hour_of_day).astype(int)
        rows = [
            {
                "z": pk,
                "h": first_hour + int(h) * 3600,
                "how": int(how[i]),
                "p": int(people[i]),
                "f": int(female[i]),
                "m": int(male[i]),
                "u": int(unknown[i]),
                "c": BENCH_CLASSIFIER if people[i] else None,
            }
            for i, h in enumerate(hours)
        ]
        with db.write() as session:
            session.execute(
                text(
                    "INSERT INTO rollup_hourly (zone_pk, hour_start, local_how, people, female, male, unknown, "
                    "dwell_samples, dwell_seconds, classifier) VALUES (:z, :h, :how, :p, :f, :m, :u, 0, 0, :c)"
                ),
                rows,
            )
    # The people and buckets (one a minute) per cell and bundle behind each cell's bundle, and the bundle's rates,
    # as ingest would keep them.
    with db.write() as session:
        session.execute(
            text(
                "INSERT INTO rollup_classifier_people (zone_pk, hour_start, classifier, people, buckets) "
                "SELECT zone_pk, hour_start, classifier, people, 60 FROM rollup_hourly WHERE people > 0"
            )
        )
        # The seconds each zone-hour's camera reported: whole hours, but about one in a hundred that a camera watched
        # half of (a reboot, a lost stream), as ingest would keep them.
        session.execute(
            text(
                "INSERT INTO rollup_observed (zone_pk, hour_start, agent_id, camera_id, seconds) "
                "SELECT zone_pk, hour_start, 'bench', 'cam', "
                "CASE WHEN (hour_start / 3600 + zone_pk) % 97 = 0 THEN 1800 ELSE 3600 END FROM rollup_hourly"
            )
        )
        # Cameras, as agents report them: each watches four neighbouring zones (its parts, every hour, as quiet
        # buckets leave them too) and sends its distinct visitors under its own id (measure 'camera'), half of its
        # zones' passes (a person passes two of its four zones): what a multi-zone answer's passes per person
        # (footfall.server.shares.passes_per_person) reads.
        cameras = (zones + CAMERA_ZONES - 1) // CAMERA_ZONES
        session.execute(
            text(
                "INSERT INTO zones (site_id, zone_id, name, floor, kind, measure, created_at) VALUES "
                + ",".join(f"('mall', 'cam-{c:03d}', 'cam-{c:03d}', '', '', 'camera', 0)" for c in range(cameras))
                + " ON CONFLICT DO NOTHING"
            )
        )
        session.execute(text("CREATE TEMPORARY TABLE bench_camera_of (zone_pk INTEGER, camera_id VARCHAR(64))"))
        session.execute(
            text("INSERT INTO bench_camera_of VALUES (:z, :c)"),
            [{"z": pk, "c": f"cam-{i // CAMERA_ZONES:03d}"} for i, pk in enumerate(pks)],
        )
        session.execute(
            text(
                "INSERT INTO rollup_camera_parts (zone_pk, camera_id, hour_start, people) "
                "SELECT h.zone_pk, o.camera_id, h.hour_start, h.people "
                "FROM rollup_hourly h JOIN bench_camera_of o ON o.zone_pk = h.zone_pk"
            )
        )
        session.execute(text("DROP TABLE bench_camera_of"))
        session.execute(
            text(
                "INSERT INTO rollup_hourly (zone_pk, hour_start, local_how, people, female, male, unknown, "
                "dwell_samples, dwell_seconds, classifier) "
                "SELECT c.id, h.hour_start, MIN(h.local_how), SUM(h.people) / 2, SUM(h.female) / 2, SUM(h.male) / 2, "
                "SUM(h.people) / 2 - SUM(h.female) / 2 - SUM(h.male) / 2, 0, 0, "
                "CASE WHEN SUM(h.people) > 1 THEN :c END "
                "FROM rollup_camera_parts p JOIN zones c ON c.zone_id = p.camera_id AND c.measure = 'camera' "
                "JOIN rollup_hourly h ON h.zone_pk = p.zone_pk AND h.hour_start = p.hour_start "
                "GROUP BY c.id, h.hour_start"
            ),
            {"c": BENCH_CLASSIFIER},
        )
        session.execute(
            text("INSERT INTO classifiers VALUES (:ref, :rates, 0, 0) ON CONFLICT DO NOTHING"),
            {"ref": BENCH_CLASSIFIER, "rates": json.dumps({"counts": BENCH_RATES, "source": "server bench"})},
        )
        # Hours before agents estimated age hold everyone as age 'unknown', as migration 0008 left them.
        banded_from = first_hour + max(days - age_days, 0) * 24 * 3600
        session.execute(text(_band_cells_sql(first_hour, banded_from, {"unknown": 1000})))
        session.execute(text(_band_cells_sql(banded_from, first_hour + days * 24 * 3600, BENCH_BAND_PERMILLE)))
    built = time.perf_counter() - started
    # What each cell releases, the daily sums and the slot running totals, as ingest would have left them: the
    # same recomputation a server does on start after its k changed.
    with db.write() as session:
        session.execute(text("DELETE FROM meta WHERE key = 'release_k'"))
    began = time.perf_counter()
    ensure_release(db, DEFAULT_K, None)  # None: no reader has seen a cell of this new dataset, so none is frozen
    released = time.perf_counter() - began
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
            conn.commit()
        hourly = conn.execute(text("SELECT count(*) FROM rollup_hourly")).scalar()
        daily = conn.execute(text("SELECT count(*) FROM rollup_daily")).scalar()
        banded = conn.execute(text("SELECT count(*) FROM rollup_hourly_age")).scalar()
    db.dispose()
    print(
        f"dataset {zones} zones × {days} days: {hourly:,} hourly and {daily:,} daily rollup rows, {banded:,} age "
        f"cells, split by band over the last {min(age_days, days)} days (built in {built:.0f} s); released with "
        f"k = {DEFAULT_K} in {released:.1f} s (what a server does on start after a change of k)"
    )


def bench_queries(url: str, label: str, repeats: int, days: int, age_days: int) -> dict[str, float]:
    from fastapi.testclient import TestClient
    from footfall.server.app import create_app
    from footfall.server.auth import create_key
    from footfall.server.settings import Settings

    app = create_app(Settings(database_url=url, retention_days=None), start_background=False)
    with app.state.context.db.write() as session:
        key = create_key(session, "bench", "viewer")[0]
    end = START + timedelta(days=days)
    cases = {
        "90-day hourly series, 1 zone": (
            "/api/v1/sites/mall/traffic/series",
            {
                "zone": "zone-007",
                "granularity": "hour",
                "start": (end - timedelta(days=90)).isoformat(),
                "end": end.isoformat(),
            },
        ),
        "ad-placement, 200 zones, 90 days": (
            "/api/v1/sites/mall/insights/ad-placement",
            {
                "audience": "female",
                "start": (end - timedelta(days=90)).isoformat(),
                "end": end.isoformat(),
                "limit": 20,
            },
        ),
        f"ad-placement, 200 zones, {days} days, 10-22": (
            "/api/v1/sites/mall/insights/ad-placement",
            {"audience": "female", "start": START.isoformat(), "end": end.isoformat(), "hours": "10-22"},
        ),
        f"{days}-day daily series, all zones": (
            "/api/v1/sites/mall/traffic/series",
            {"granularity": "day", "start": START.isoformat(), "end": end.isoformat()},
        ),
        f"{days}-day zone comparison, all zones": (
            "/api/v1/sites/mall/traffic/compare",
            {"start": START.isoformat(), "end": end.isoformat()},
        ),
        f"{age_days}-day daily age tables, all zones": (
            "/api/v1/sites/mall/traffic/ages",
            {"granularity": "day", "start": (end - timedelta(days=age_days)).isoformat(), "end": end.isoformat()},
        ),
        f"{age_days}-day hourly age tables, 1 zone": (
            "/api/v1/sites/mall/traffic/ages",
            {
                "zone": "zone-007",
                "granularity": "hour",
                "start": (end - timedelta(days=age_days)).isoformat(),
                "end": end.isoformat(),
            },
        ),
        f"ad-placement women 25-34, {age_days} days": (
            "/api/v1/sites/mall/insights/ad-placement",
            {
                "audience": "female",
                "age": "25-34",
                "start": (end - timedelta(days=age_days)).isoformat(),
                "end": end.isoformat(),
                "limit": 20,
            },
        ),
    }
    figures = {}
    with TestClient(app) as client:
        for name, (path, params) in cases.items():
            timings = []
            for i in range(repeats + 2):
                began = time.perf_counter()
                response = client.get(path, params=params, headers={"X-API-Key": key})
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    break
                if i >= 2:  # two warm-up calls
                    timings.append(elapsed)
            if response.status_code != 200:  # reported, the other cases still measured, and the run exits 1
                figures[name] = float("nan")
                print(
                    f"latency {label:10s} {name:36s} FAILED after {elapsed:,.0f} ms: {response.status_code} "
                    f"{response.text[:200]}"
                )
                continue
            p95 = float(np.percentile(timings, 95))
            figures[name] = p95
            size = len(response.json().get("points", response.json().get("slots", [])))
            print(
                f"latency {label:10s} {name:36s} p50 {statistics.median(timings):7.1f} ms"
                f"   p95 {p95:7.1f} ms "
                f"({repeats} requests, {size} rows returned; load average {os.getloadavg()[0]:.1f})"
            )
    return figures


def bench_export(url: str, label: str, days: int, zones: int = 24) -> dict[str, float]:
    """Streams ``days`` of hourly rows for ``zones`` zones as CSV from a real ``footfall server`` process, reading
    the server's resident memory as it goes, while another client asks for a zone's totals every 0.2 s."""
    import re
    import socket
    import threading
    import urllib.parse
    import urllib.request

    from footfall.server.auth import create_key

    db = Database(url)
    with db.write() as session:
        key = create_key(session, "bench export", "viewer")[0]
    db.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "footfall", "server", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> bytes:
        request = urllib.request.Request(base + path, headers={"X-API-Key": key})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def resident_mib() -> float:
        status = Path(f"/proc/{server.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("footfall server did not start for the export benchmark") from None
                time.sleep(0.2)
        end = START + timedelta(days=days)
        query = urllib.parse.urlencode(
            [("granularity", "hour"), ("start", START.isoformat()), ("end", end.isoformat())]
            + [("zone", f"zone-{z:03d}") for z in range(zones)]
        )
        totals_path = f"/api/v1/sites/mall/traffic/totals?zone=zone-150&start={START.date()}&end={end.date()}"
        get(totals_path)
        idle = resident_mib()
        latencies: list[float] = []
        stop = threading.Event()

        def meanwhile() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                get(totals_path)
                latencies.append((time.perf_counter() - began) * 1000)
                stop.wait(0.2)

        other = threading.Thread(target=meanwhile)
        other.start()
        peak, size, lines = idle, 0, 0
        started = time.perf_counter()
        request = urllib.request.Request(
            f"{base}/api/v1/sites/mall/traffic/export.csv?{query}", headers={"X-API-Key": key}
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            while chunk := response.read(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
                peak = max(peak, resident_mib())
        elapsed = time.perf_counter() - started
        stop.set()
        other.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    p95 = float(np.percentile(latencies, 95)) if latencies else float("nan")
    print(
        f"export   {label:10s} {lines - 1:,} hourly rows of {zones} zones ({size / 1e6:.1f} MB) streamed in "
        f"{elapsed:.1f} s; server memory {idle:.0f} MiB idle, {peak:.0f} MiB peak while streaming; "
        f"{len(latencies)} totals requests meanwhile, p95 {p95:.0f} ms"
    )
    return {"rows": lines - 1, "seconds": elapsed, "idle_mib": idle, "peak_mib": peak, "meanwhile_p95_ms": p95}


def bench_k_change(url: str, label: str, k: int = DEFAULT_K + 3) -> float:
    """An admin's change of the site's k to a stricter ``k`` with every hour of the dataset seen by readers, as
    ``PATCH /sites/{id}`` runs it: one transaction, during which the site's ingest waits. Rolled back, so the
    dataset stays as it was; returns its seconds."""
    from footfall.server.release import seen_until
    from footfall.server.rollups import release_site

    db = Database(url)
    try:
        with db.sessions() as session:
            started = time.perf_counter()
            release_site(session, "mall", k, seen_until(time.time(), open_hour=False, delay=0))
            session.flush()
            elapsed = time.perf_counter() - started
            session.rollback()
    finally:
        db.dispose()
    print(f"k        {label:10s} site's k {DEFAULT_K} → {k}, every hour seen: released again in {elapsed:.1f} s")
    return elapsed


def bench_refile(url: str, label: str) -> dict[str, float]:
    """A time-zone change of the whole dataset's site: how long it takes, and the longest transaction of it,
    which is the longest an ingest batch of that site can wait (the site is re-filed one zone at a time)."""
    from footfall.server.rollups import refile

    db = Database(url)
    zone_transactions: list[float] = []
    one_zone = refile.refile_zone

    def timed(*args: object, **kwargs: object) -> int:
        began = time.perf_counter()
        cells = one_zone(*args, **kwargs)
        zone_transactions.append(time.perf_counter() - began)
        return cells

    refile.refile_zone = timed
    try:
        with db.write() as session:
            refile.start_refile(session, "mall", "Europe/Berlin")
        started = time.perf_counter()
        cells = refile.refile_site(db, "mall", "Europe/Berlin")
        elapsed = time.perf_counter() - started
    finally:
        refile.refile_zone = one_zone
        db.dispose()
    longest = max(zone_transactions) * 1000
    print(
        f"refile   {label:10s} time zone changed: {cells:,} hourly cells of {len(zone_transactions)} zones re-filed "
        f"in {elapsed:.1f} s; longest transaction (the longest ingest waits) {longest:.0f} ms"
    )
    return {"seconds": elapsed, "longest_ms": longest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes for a fast check.")
    parser.add_argument("--messages", type=int, default=None, help="Messages per ingest run (default 60,000).")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--age-days", type=int, default=90, help="Days (the last of the dataset) split by age band (default 90)."
    )
    parser.add_argument(
        "--queries-only", action="store_true", help="Only the API latencies (no ingest, export or time-zone change)."
    )
    args = parser.parse_args()
    count = args.messages or (10_000 if args.quick else 60_000)
    days, repeats = (90, 20) if args.quick else (365, 50)

    postgres = None
    pg_url = os.environ.get("DATABASE_URL")
    if not pg_url:
        from tests.services import PostgresServer

        postgres = PostgresServer().start()
        pg_url = postgres.url
    workdir = Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    figures: dict[str, float] = {}  # query case -> p95 ms (NaN: failed)
    try:
        print(
            f"footfall server benchmark ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at "
            f"start); PostgreSQL at {pg_url.split('@')[-1]}"
        )
        everything = not args.queries_only
        if not args.skip_sqlite and everything:
            bench_ingest(f"sqlite:///{workdir / 'ingest.db'}", "SQLite", count)
            bench_mqtt(f"sqlite:///{workdir / 'ingest.db'}", "SQLite", count // 2)
        if everything:
            bench_ingest(pg_url, "PostgreSQL", count)
            bench_mqtt(pg_url, "PostgreSQL", count // 2)
        upgrade(Database(pg_url).engine)
        with Database(pg_url).engine.begin() as conn:  # start the query dataset from clean tables
            conn.execute(
                text(
                    "TRUNCATE buckets, rollup_hourly, rollup_hourly_age, rollup_classifier_people, classifiers, "
                    "rollup_daily, rollup_slot_cumulative, rollup_slot_span, agents, zones, "
                    "sites CASCADE"
                )
            )
        build_year(pg_url, ZONES, days, args.age_days)
        figures |= {
            f"PostgreSQL {name}": value
            for name, value in bench_queries(pg_url, "PostgreSQL", repeats, days, args.age_days).items()
        }
        if everything:
            bench_k_change(pg_url, "PostgreSQL")
            bench_export(pg_url, "PostgreSQL", days)
            bench_refile(pg_url, "PostgreSQL")
        if not args.skip_sqlite:
            build_year(f"sqlite:///{workdir / 'query.db'}", ZONES, days, args.age_days)
            figures |= {
                f"SQLite {name}": value
                for name, value in bench_queries(
                    f"sqlite:///{workdir / 'query.db'}", "SQLite", repeats, days, args.age_days
                ).items()
            }
            if everything:
                bench_k_change(f"sqlite:///{workdir / 'query.db'}", "SQLite")
                bench_export(f"sqlite:///{workdir / 'query.db'}", "SQLite", days)
                bench_refile(f"sqlite:///{workdir / 'query.db'}", "SQLite")
    finally:
        if postgres:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # the SQLite datasets: about 400 MB a run
    failed = [name for name, value in figures.items() if math.isnan(value)]  # it did not answer 200
    if failed:
        sys.exit(f"{len(failed)} query case(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
