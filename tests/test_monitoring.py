"""deploy/monitoring: the alert rules and the Grafana dashboard name only metrics the agent and the server
really expose (their registries, instantiated here), the rules are well formed and pass ``promtool check
rules`` (Debian's ``prometheus`` package) and fire as meant on synthetic series (``promtool test rules``), and
Prometheus' configuration passes ``promtool check config``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
PROMETHEUS = MONITORING / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "footfall.json"
METRIC_NAME = re.compile(r"\bfootfall_[a-z_]+")
REQUIRED_ALERTS = {
    "FootfallAgentOffline",
    "FootfallAgentOutboxGrowing",
    "FootfallAgentLostAggregates",
    "FootfallServerDown",
    "FootfallServerDatabaseDown",
    "FootfallIngestStalled",
    "FootfallDeadLettersRising",
    "FootfallCameraFpsLow",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}


def sample_names(families: Iterable) -> set[str]:
    """Every series name a family can expose, with or without samples yet (a labelled metric no label set
    was used with shows none)."""
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def agent_names() -> set[str]:
    from footfall.edge.metrics import AgentMetrics

    return sample_names(AgentMetrics().registry.collect())


@pytest.fixture(scope="module")
def server_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    from tests.server.conftest import make_server

    url = f"sqlite:///{tmp_path_factory.mktemp('server') / 'footfall.db'}"
    for server in make_server(url):
        response = server.client.get("/metrics", headers={"Authorization": f"Bearer {server.keys['admin']}"})
        assert response.status_code == 200, response.text
        yield sample_names(text_string_to_metric_families(response.text))


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    return exprs


def test_known_names_come_from_both_registries(agent_names: set[str], server_names: set[str]) -> None:
    assert {"footfall_agent_processing_fps", "footfall_agent_configured_fps"} <= agent_names
    assert "footfall_agent_stage_duration_seconds_bucket" in agent_names
    assert {"footfall_server_ingest_stalled", "footfall_server_dead_letters_total"} <= server_names
    assert "footfall_server_http_request_duration_seconds_bucket" in server_names


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_named_exists(source: str, rules: list[dict], agent_names: set, server_names: set) -> None:
    exprs = [rule["expr"] for rule in rules] if source == "alerts" else dashboard_exprs()
    named = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert named, f"the {source} name no footfall metric"
    unknown = named - agent_names - server_names
    assert not unknown, f"the {source} name metrics nobody exposes: {sorted(unknown)}"


def test_dashboard_is_provisioned_and_uses_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    sources = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    providers = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/footfall.yml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/monitoring/grafana/dashboards"] == providers["providers"][0]["options"]["path"]


def test_alert_rules_are_well_formed(rules: list[dict]) -> None:
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule.get("alert")
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    by_name = {rule["alert"]: rule for rule in rules}
    assert by_name["FootfallAgentOffline"]["for"] == "5m"
    assert by_name["FootfallAgentOutboxGrowing"]["for"] == "15m"


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI (Debian: apt-get install prometheus; .ci/run installs it)")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus); the structural checks ran")
    return binary


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def test_promtool_checks_the_rules_and_the_config(tmp_path: Path) -> None:
    binary = promtool()
    result = run(binary, "check", "rules", str(ALERTS), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The configuration names the container's paths: point them at the repository's files and a dummy key.
    (tmp_path / "footfall-metrics.key").write_text("not-a-key")
    text = PROMETHEUS.read_text().replace("/etc/prometheus/alerts.yml", str(ALERTS))
    text = text.replace("/etc/prometheus/secrets/", f"{tmp_path}/")
    (tmp_path / "prometheus.yml").write_text(text)
    result = run(binary, "check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_synthetic_series(tmp_path: Path) -> None:
    """``promtool test rules``: each alert fires when its condition has held for its ``for``, not before."""
    binary = promtool()
    agent = 'instance="box:9464", job="footfall-agent"'
    server = 'instance="server:8000", job="footfall-server"'
    cam = f'{agent}, camera="cam1"'
    series = [
        # 15 fps configured, 10 processed while the camera delivers 15 (900 frames a minute): too slow.
        (f"footfall_agent_configured_fps{{{cam}}}", "15+0x30"),
        (f"footfall_agent_processing_fps{{{cam}}}", "10+0x30"),
        (f"footfall_agent_frames_read_total{{{cam}}}", "0+900x30"),
        (f"footfall_agent_camera_up{{{cam}}}", "1+0x30"),
        (f"footfall_agent_outbox_depth{{{agent}}}", "1+1x40"),
        (f'footfall_agent_aggregates_dropped_total{{{agent}, reason="outbox_full"}}', "0 0 0 0 0 5 5 5 5 5 5 5"),
        (f'footfall_server_agents{{{server}, state="offline"}}', "1+0x30"),
        (f"footfall_server_ingest_stalled{{{server}}}", "1+0x30"),
        (f"up{{{server}}}", "0+0x30"),
        (f"footfall_server_database_up{{{server}}}", "0+0x30"),
        (f"footfall_server_dead_letters_total{{{server}}}", "0 0 1 2 3 4 5 6 7 8 9 10"),
    ]
    expected = {
        "FootfallCameraFpsLow": ("9m", "17m"),  # rate() needs its 5 m window first
        "FootfallAgentOffline": ("4m", "6m"),
        "FootfallAgentOutboxGrowing": ("14m", "16m"),
        "FootfallAgentLostAggregates": ("4m", "7m"),
        "FootfallIngestStalled": ("1m", "3m"),
        "FootfallServerDown": ("1m", "3m"),
        "FootfallServerDatabaseDown": ("1m", "3m"),
        "FootfallDeadLettersRising": ("4m", "8m"),
    }
    cases = []
    for alert, (before, after) in expected.items():
        cases.append({"eval_time": before, "alertname": alert, "exp_alerts": []})
        cases.append({"eval_time": after, "alertname": alert, "exp_alerts": None})
    # exp_alerts must list the labels exactly: compute what each alert carries from its rule.
    rules = {rule["alert"]: rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    labels = {
        "FootfallCameraFpsLow": {"instance": "box:9464", "job": "footfall-agent", "camera": "cam1"},
        "FootfallAgentOffline": {"job": "footfall-server", "state": "offline"},
        "FootfallAgentOutboxGrowing": {"instance": "box:9464", "job": "footfall-agent"},
        "FootfallAgentLostAggregates": {"instance": "box:9464", "job": "footfall-agent", "reason": "outbox_full"},
        "FootfallIngestStalled": {"instance": "server:8000", "job": "footfall-server", "__name__": None},
        "FootfallServerDown": {"instance": "server:8000", "job": "footfall-server", "__name__": None},
        "FootfallServerDatabaseDown": {"instance": "server:8000", "job": "footfall-server", "__name__": None},
        "FootfallDeadLettersRising": {"job": "footfall-server"},
    }
    for case in cases:
        if case["exp_alerts"] is None:
            name = case["alertname"]
            exp = {k: v for k, v in labels[name].items() if v is not None}
            exp.update(rules[name]["labels"])
            case["exp_alerts"] = [{"exp_labels": exp}]
    # Annotations are templated text: compare labels only, on a copy of the rules without them.
    stripped = yaml.safe_load(ALERTS.read_text())
    for group in stripped["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(stripped, sort_keys=False))
    test = {
        "rule_files": [str(tmp_path / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": cases,
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = run(binary, "test", "rules", str(tmp_path / "test.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
