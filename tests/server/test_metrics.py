"""Prometheus metrics during a real run: what /metrics reports, parsed with the Prometheus text parser, equals
what the run did; the endpoint needs a metrics or admin key; route labels are templates, never raw paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("prometheus_client")

from footfall.server.auth import create_key
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import BASE, Server, aggregate, make_server, minutes
from tests.waiting import wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture()
def metrics_server(sqlite_url: str) -> Iterator[Server]:
    for server in make_server(sqlite_url):
        with server.db.write() as session:
            server.keys["metrics"] = create_key(session, "prometheus", "metrics")[0]
        yield server


def scrape(server: Server, role: str = "metrics") -> Samples:
    response = server.client.get("/metrics", headers={"Authorization": f"Bearer {server.keys[role]}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counts_match_the_run(metrics_server: Server) -> None:
    server = metrics_server
    first = [aggregate(start=BASE + minutes(i), seq=i + 1, female=3, male=2) for i in range(3)]
    assert server.ingest(*first).status_code == 200
    assert server.ingest(first[0]).json()["duplicates"] == 1  # a redelivery
    assert server.ingest(aggregate(agent="agent-2", start=BASE + minutes(9), female=1)).status_code == 200
    assert server.ingest(b'{"kind": "aggregate"}').status_code == 422  # refused, dead-lettered
    assert server.get("/api/v1/sites/mall/traffic/series", granularity="hour").status_code == 200
    assert server.get("/api/v1/sites/nowhere/traffic/series").status_code == 404
    assert server.client.get("/no/such/page").status_code == 404
    oversized = server.client.patch(
        "/api/v1/sites/mall", content=b"{" + b" " * 70_000 + b"}", headers=server.headers("admin")
    )
    assert oversized.status_code == 413  # refused before routing, by the body limit

    for role in ("metrics", "admin"):
        samples = scrape(server, role)
        ingested = "footfall_server_messages_ingested_total"
        assert value(samples, ingested, path="http", result="stored") == 4
        assert value(samples, ingested, path="http", result="duplicate") == 1
        assert value(samples, ingested, path="http", result="refused") == 1
        assert value(samples, ingested, path="mqtt", result="stored") == 0
        assert value(samples, "footfall_server_dead_letters_total") == 1
        assert value(samples, "footfall_server_db_batch_duration_seconds_count", path="http") == 4
        assert value(samples, "footfall_server_agents", state="online") == 2
        assert (
            value(samples, "footfall_server_agent_last_bucket_timestamp_seconds", agent_id="agent-1")
            == (BASE + minutes(2)).timestamp()
        )
        assert (
            value(samples, "footfall_server_agent_last_bucket_timestamp_seconds", agent_id="agent-2")
            == (BASE + minutes(9)).timestamp()
        )
        assert value(samples, "footfall_server_ingest_stalled") == 0
        assert value(samples, "footfall_server_mqtt_inbox_messages") == 0
        assert value(samples, "footfall_server_mqtt_publishes_refused_total", kind="settings") == 0
        build = [labels for (name, labels) in samples if name == "footfall_server_build_info"]
        assert len(build) == 1 and dict(build[0])["schema_revision"]

        requests = "footfall_server_http_requests_total"
        ingest = {"route": "/api/v1/ingest", "method": "POST"}
        assert value(samples, requests, **ingest, status="200") == 3
        assert value(samples, requests, **ingest, status="422") == 1
        series = "/api/v1/sites/{site_id}/traffic/series"
        assert value(samples, requests, route=series, method="GET", status="200") == 1
        assert value(samples, requests, route=series, method="GET", status="404") == 1
        assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
        # The 413 read "unmatched", with the 404s of paths no route has: the route it was sent to names it.
        site = "/api/v1/sites/{site_id}"
        assert value(samples, requests, route=site, method="PATCH", status="413") == 1
        assert value(samples, "footfall_server_http_request_duration_seconds_count", **ingest) == 4
        routes = {dict(labels).get("route") for (name, labels) in samples if name == requests}
        assert not any("mall" in str(route) or "nowhere" in str(route) for route in routes), routes
    # The first scrape (with the metrics key) is itself counted in the second.
    assert value(samples, requests, route="/metrics", method="GET", status="200") == 1


def test_metrics_need_a_metrics_or_admin_key(metrics_server: Server) -> None:
    client = metrics_server.client
    assert client.get("/metrics").status_code == 401
    for role in ("viewer", "agent"):
        assert client.get("/metrics", headers=metrics_server.headers(role)).status_code == 403
    # A metrics key reads /metrics and nothing else.
    assert metrics_server.get("/api/v1/sites", role="metrics").status_code == 403
    assert metrics_server.get("/api/v1/admin/keys", role="metrics").status_code == 403
    assert client.get("/metrics", headers=metrics_server.headers("metrics")).status_code == 200


@pytest.mark.broker
def test_mqtt_ingest_is_counted_by_path(mosquitto, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    import paho.mqtt.client as mqtt
    from footfall.server.mqtt_consumer import MqttConsumer

    from tests.server.conftest import encoded

    for server in make_server(sqlite_url):
        consumer = MqttConsumer(mosquitto.url, server.client.app.state.context.ingestor, client_id="metrics-test")
        server.client.app.state.context.background.append(consumer.start())
        assert consumer.wait_connected()
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="metrics-agent", protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        try:
            messages = [aggregate(start=BASE + minutes(i), seq=i + 1, female=2) for i in range(5)]
            for message in [*messages, messages[0]]:
                publisher.publish("footfall/v1/mall/agent-1/aggregates", encoded(message), qos=1).wait_for_publish(10)

            def counted(server: Server = server) -> bool:
                samples = scrape(server, "admin")
                stored = value(samples, "footfall_server_messages_ingested_total", path="mqtt", result="stored")
                duplicate = value(samples, "footfall_server_messages_ingested_total", path="mqtt", result="duplicate")
                return stored == 5 and duplicate == 1

            wait_until(counted)
            samples = scrape(server, "admin")
            assert value(samples, "footfall_server_mqtt_connected") == 1
            assert value(samples, "footfall_server_messages_ingested_total", path="http", result="stored") == 0
            assert value(samples, "footfall_server_db_batch_duration_seconds_count", path="mqtt") >= 1
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            consumer.stop()


def test_made_up_http_methods_share_one_label_so_no_client_can_grow_the_series(metrics_server: Server) -> None:
    # Anyone who can reach the port may send any method token; each used to add its own series.
    client = metrics_server.client
    for index in range(50):
        assert client.request(f"PROBE{index}", "/api/v1/sites").status_code in (401, 405)
    assert client.request("GET", "/api/v1/nowhere").status_code == 404
    samples = scrape(metrics_server)
    requests = "footfall_server_http_requests_total"
    methods = {dict(labels)["method"] for (name, labels) in samples if name == requests}
    assert methods == {"GET", "other"}, methods
    assert value(samples, requests, route="/api/v1/sites", method="other", status="405") == 50
