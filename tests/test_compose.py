"""The docker compose deployment, checked without a Docker engine.

* docker-compose.yml is valid against the Compose Specification's JSON Schema and ``docker-compose config``
  accepts it (both from Debian's ``docker-compose`` package, which needs no engine for this);
* what a working stack needs: health checks, restart policies, start order, Dockerfiles that exist;
* the broker's access control, against a real mosquitto started with deploy/mosquitto's own files: each
  agent publishes only under its own topic prefix, the server reads everything, nobody logs in anonymously;
* every secret in the repository is a clearly marked demo one, and the demo passwords the services use are
  the ones in the committed password file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from footfall.broker import free_port, wait_for_port
from tests.conftest import _require

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"
AGENT_CONFIG = REPO / "deploy" / "agent" / "config.yaml"
DEMO_PASSWD = MOSQUITTO_DIR / "demo.passwd"
# Debian's docker-compose (1.29) ships the Compose Specification schema it validates with.
COMPOSE_SCHEMA_CANDIDATES = (
    os.environ.get("FOOTFALL_COMPOSE_SCHEMA", ""),
    "/usr/lib/python3/dist-packages/compose/config/compose_spec.json",
)
DEFAULT_PATTERN = re.compile(r"\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def interpolate(text: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the environment: the committed defaults."""
    return DEFAULT_PATTERN.sub(lambda match: match["default"], text)


def parse_acl(text: str) -> dict[str | None, list[tuple[str, str]]]:
    """mosquitto acl_file → {user (None: anonymous): [(access, topic)]}; pattern rules under '%pattern'."""
    rules: dict[str | None, list[tuple[str, str]]] = {}
    user: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "user":
            user = rest.strip()
            rules.setdefault(user, [])
        elif keyword in ("topic", "pattern"):
            access, _, topic = rest.partition(" ")
            if access not in ("read", "write", "readwrite", "deny"):  # no access word: read and write
                access, topic = "readwrite", rest
            rules.setdefault("%pattern" if keyword == "pattern" else user, []).append((access, topic.strip()))
        else:
            raise AssertionError(f"unexpected line in acl: {raw!r}")
    return rules


def verify_mosquitto_password(passwd: Path, user: str, password: str) -> bool:
    """Checks a password against a mosquitto_passwd entry ($7$: PBKDF2-SHA512, $6$: salted SHA512)."""
    for line in passwd.read_text().splitlines():
        name, _, entry = line.partition(":")
        if name != user:
            continue
        fields = entry.split("$")
        if fields[1] == "7":
            iterations, salt, digest = int(fields[2]), base64.b64decode(fields[3]), fields[4]
            computed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
        elif fields[1] == "6":
            salt, digest = base64.b64decode(fields[2]), fields[3]
            computed = hashlib.sha512(password.encode() + salt).digest()
        else:
            raise AssertionError(f"{passwd}: unknown hash type ${fields[1]}$ for {user}")
        return base64.b64encode(computed).decode() == digest
    return False


# --- the compose file is valid --------------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec_schema(compose: dict) -> None:
    schema_path = next((Path(p) for p in COMPOSE_SCHEMA_CANDIDATES if p and Path(p).is_file()), None)
    if schema_path is None:
        _require("the Compose Specification schema is missing (Debian: apt-get install docker-compose)")
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(json.loads(schema_path.read_text()))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


MONITORING = {"prometheus", "grafana"}


def _compose_config(*profiles: str) -> dict:
    """``docker-compose config`` of the file with these profiles on (Debian's docker-compose needs no engine)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        _require("docker-compose is not installed (Debian: apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env.pop("GRAFANA_ADMIN_PASSWORD", None)
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), *flags, "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _active(config: dict, *profiles: str) -> set[str]:
    """The services ``up`` starts: those with no profile, or one of these (docker-compose 1.29's ``config``
    lists every service; the Compose Specification's rule decides)."""
    return {
        name
        for name, service in config["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def test_docker_compose_config_accepts_the_default_stack_without_monitoring() -> None:
    config = _compose_config()
    assert _active(config) == {"mosquitto", "postgres", "server", "agent"}
    assert not _active(config) & MONITORING


def test_docker_compose_config_accepts_the_monitoring_profile() -> None:
    config = _compose_config("monitoring")
    assert _active(config, "monitoring") == {"mosquitto", "postgres", "server", "agent", *MONITORING}
    for name in MONITORING:
        service = config["services"][name]
        assert service["profiles"] == ["monitoring"]
        for port in service["ports"]:
            published = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
            assert str(published).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_grafana_has_no_default_admin_password_and_refuses_a_short_one(services: dict) -> None:
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    script = grafana["entrypoint"][-1]
    for password, starts in (("", False), ("admin", False), ("a-long-enough-password", True)):
        result = subprocess.run(
            ["sh", "-c", script.replace("$$", "$").replace("exec /run.sh", "exit 0")],
            env={"GF_SECURITY_ADMIN_PASSWORD": password, "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert (result.returncode == 0) is starts, (password, result.stderr)


# --- what a working stack needs ------------------------------------------------------------------------


def test_every_service_has_a_health_check_and_a_restart_policy(services: dict) -> None:
    assert set(services) >= {"mosquitto", "postgres", "server", "agent"}
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: health check must be CMD or CMD-SHELL"
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: no restart policy"


def test_server_and_agent_start_after_what_they_need_is_healthy(services: dict) -> None:
    server = services["server"]["depends_on"]
    assert server["postgres"]["condition"] == "service_healthy"
    assert server["mosquitto"]["condition"] == "service_healthy"
    agent = services["agent"]["depends_on"]
    assert agent["mosquitto"]["condition"] == "service_healthy"
    # Until the server has subscribed once, the broker drops what the agent publishes.
    assert agent["server"]["condition"] == "service_healthy"


def test_server_gets_its_database_and_broker_with_its_own_credentials(services: dict) -> None:
    environment = {k: interpolate(str(v)) for k, v in services["server"]["environment"].items()}
    database = environment["DATABASE_URL"]
    assert database.startswith("postgresql://") and "@postgres:5432/" in database
    postgres_env = services["postgres"]["environment"]
    assert database.split("@")[0].split("://")[1] == (
        f"{postgres_env['POSTGRES_USER']}:{interpolate(postgres_env['POSTGRES_PASSWORD'])}"
    )
    mqtt = environment["MQTT_URL"]
    assert re.fullmatch(r"mqtt://footfall-server:[^@]+@mosquitto:1883", mqtt), mqtt
    healthcheck = " ".join(services["server"]["healthcheck"]["test"])
    assert "/healthz" in healthcheck


def test_referenced_dockerfiles_and_mounted_files_exist(services: dict) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = REPO / build["context"]
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile.relative_to(REPO)} does not exist"
        for volume in service.get("volumes", []):
            source = interpolate(volume.split(":")[0])
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: mounted {source} does not exist"


def _exec_form(dockerfile: Path, instruction: str) -> list[str] | None:
    """The last exec-form (JSON array) ENTRYPOINT or CMD of a Dockerfile."""
    found = re.findall(rf"^{instruction}\s+(\[.*\])\s*$", dockerfile.read_text(), re.MULTILINE)
    return json.loads(found[-1]) if found else None


@pytest.mark.parametrize("name", ["server", "agent"])
def test_each_container_runs_the_right_footfall_command(services: dict, name: str) -> None:
    service = services[name]
    dockerfile = REPO / service["build"]["context"] / service["build"]["dockerfile"]
    entrypoint = service.get("entrypoint", _exec_form(dockerfile, "ENTRYPOINT")) or []
    command = service.get("command", _exec_form(dockerfile, "CMD")) or []
    argv = [*entrypoint, *command]
    assert argv[0] == "footfall", argv
    words = [word for word in argv[1:] if not word.startswith("-")]
    assert words[0] == name, f"{name} container runs {' '.join(argv)}"
    if name == "agent":
        config = argv[argv.index("--config") + 1]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert mounts.get(config) == "./deploy/agent/config.yaml", f"{config} is not deploy/agent/config.yaml"
        from footfall.edge.config import load_config

        camera = load_config(AGENT_CONFIG).cameras[0]
        clip_dir = next(target for target, source in mounts.items() if source == "./edge/samples")
        assert str(camera.source).startswith(clip_dir + "/")
        assert (REPO / "edge" / "samples" / Path(str(camera.source)).name).is_file()


def test_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name}: volume {source} is not declared under volumes:"


def test_server_dockerfile_installs_the_server_extra_and_runs_unprivileged() -> None:
    text = (REPO / "server" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages and all(stage == "python:3.11-slim" for stage in stages), stages
    assert '".[server]"' in text or "'.[server]'" in text or ".[server]" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert re.search(r"^HEALTHCHECK .*", text, re.MULTILINE) and "/healthz" in text
    assert re.search(r'^CMD \["footfall", "server"', text, re.MULTILINE)


@pytest.mark.slow
def test_server_image_context_builds_a_wheel_with_the_server_files(tmp_path: Path) -> None:
    """The Dockerfile's first stage (`pip wheel .[server]`) on the context its dockerignore leaves."""
    ignore = [
        line.strip().rstrip("/")
        for line in (REPO / "server" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    context = tmp_path / "context"
    for relative in tracked:
        path = Path(relative)
        if any(
            path.match(rule) or any(Path(*path.parts[: i + 1]).match(rule) for i in range(len(path.parts)))
            for rule in (r.removeprefix("**/") for r in ignore)
        ):
            continue
        if (REPO / path).is_file():
            (context / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, context / path)
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import zipfile

    (wheel,) = (tmp_path / "wheels").glob("footfall-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "footfall/server/app.py" in names and "footfall/cli.py" in names
    assert any(name.startswith("footfall/server/migrations/") for name in names)
    assert not any(name.startswith("footfall/models/bundles/") for name in names), "models leaked into the image"


# --- broker access control ------------------------------------------------------------------------------


def test_acl_lets_each_agent_publish_only_under_its_own_prefix() -> None:
    from footfall.edge.config import load_config

    config = load_config(AGENT_CONFIG)
    rules = parse_acl((MOSQUITTO_DIR / "acl").read_text())
    assert None not in rules, "the acl has rules for anonymous clients"
    assert "%pattern" not in rules, "pattern rules would apply to every user"
    assert config.mqtt.username == config.agent_id, "an agent logs in as its agent id"
    assert config.mqtt.host == "mosquitto"
    own = f"{config.mqtt.topic_prefix}/{config.site_id}/{config.agent_id}"
    assert rules[config.mqtt.username] == [
        ("write", f"{own}/#"),
        ("read", f"{own}/receipts"),
        ("read", f"{config.mqtt.topic_prefix}/{config.site_id}/settings"),
        ("read", "footfall/v1/_servers/online"),
    ]
    for user, user_rules in rules.items():
        if user in ("footfall-server", "healthcheck"):
            continue
        # Every other user is an agent: it writes under its own prefix and reads its receipts, its site's
        # settings and the servers' online notices, nothing else.
        (write, write_topic), *reads = user_rules
        match = re.fullmatch(rf"footfall/v1/([^/#+]+)/{re.escape(user)}/#", write_topic)
        assert write == "write" and match, user
        assert reads == [
            ("read", write_topic.replace("/#", "/receipts")),
            ("read", f"footfall/v1/{match[1]}/settings"),
            ("read", "footfall/v1/_servers/online"),
        ]
    assert rules["footfall-server"] == [
        ("read", "footfall/v1/#"),
        ("write", "footfall/v1/+/+/receipts"),
        ("write", "footfall/v1/+/settings"),
        ("write", "footfall/v1/_servers/online"),
    ]
    assert rules["healthcheck"] == [("read", "$SYS/broker/uptime")]


def acl_allows(rules: dict[str | None, list[tuple[str, str]]], user: str, access: str, topic: str) -> bool:
    """Whether ``user`` may ``access`` ("read" or "write") ``topic`` under these rules (mosquitto's matching:
    ``+`` one level, ``#`` the rest)."""

    def matches(pattern: str, name: str) -> bool:
        parts, levels = pattern.split("/"), name.split("/")
        for index, part in enumerate(parts):
            if part == "#":
                return True
            if index >= len(levels) or (part != "+" and part != levels[index]):
                return False
        return len(parts) == len(levels)

    return any(given in (access, "readwrite") and matches(pattern, topic) for given, pattern in rules.get(user, []))


def test_acl_grants_every_topic_the_wire_protocol_uses() -> None:
    """Each topic the agent and the server publish or subscribe to (footfall.core.wire's topic functions, as
    edge/delivery.py and server/mqtt_consumer.py use them) is allowed to the user that needs it: a topic the
    ACL forgets is dropped by the broker without an error, e.g. a site's demographics mode never reaching
    its agents."""
    from footfall.core import wire
    from footfall.edge.config import load_config

    config = load_config(AGENT_CONFIG)
    rules = parse_acl((MOSQUITTO_DIR / "acl").read_text())
    prefix, site, agent, user = config.mqtt.topic_prefix, config.site_id, config.agent_id, config.mqtt.username
    agent_needs = {
        ("write", wire.aggregate_topic(site, agent, prefix)),
        ("write", wire.status_topic(site, agent, prefix)),
        ("read", wire.receipt_topic(site, agent, prefix)),
        ("read", wire.server_online_topic(prefix)),
        ("read", wire.site_settings_topic(site, prefix)),
    }
    server_needs = {
        *(("read", topic.replace("+", "x")) for topic in wire.subscription_filters(prefix)),
        ("write", wire.receipt_topic(site, agent, prefix)),
        ("write", wire.server_online_topic(prefix)),
        ("write", wire.site_settings_topic(site, prefix)),
    }
    missing = [(user, *need) for need in sorted(agent_needs) if not acl_allows(rules, user, *need)]
    missing += [
        ("footfall-server", *need) for need in sorted(server_needs) if not acl_allows(rules, "footfall-server", *need)
    ]
    assert not missing, f"deploy/mosquitto/acl denies topics footfall uses: {missing}"
    # ... and nothing of another site or agent.
    assert not acl_allows(rules, user, "read", wire.site_settings_topic("other-site", prefix))
    assert not acl_allows(rules, user, "read", wire.receipt_topic(site, "another-agent", prefix))


def test_mosquitto_conf_requires_login_and_uses_the_acl() -> None:
    lines = [line.split("#")[0].strip() for line in (MOSQUITTO_DIR / "mosquitto.conf").read_text().splitlines()]
    settings = [line for line in lines if line]
    assert "per_listener_settings true" in settings
    listener = settings.index("listener 1883")
    after = settings[listener:]
    assert "allow_anonymous false" in after
    assert "password_file /mosquitto/config/passwd" in after
    assert "acl_file /mosquitto/config/acl" in after
    assert "persistence true" in settings


def _broker_config(tmp_path: Path, port: int) -> Path:
    """deploy/mosquitto/mosquitto.conf, with its container paths pointed at the repository's files."""
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    text = text.replace("/mosquitto/config/passwd", str(DEMO_PASSWD))
    text = text.replace("/mosquitto/config/acl", str(MOSQUITTO_DIR / "acl"))
    text = text.replace("/mosquitto/data/", f"{tmp_path}/")
    text = text.replace("log_dest stdout", f"log_dest file {tmp_path / 'mosquitto.log'}")
    config = tmp_path / "mosquitto.conf"
    config.write_text(text)
    return config


class _Client:
    """A paho client that connects, records what it receives and whether the broker let it in."""

    def __init__(self, port: int, user: str | None, password: str | None, protocol: str = "v311"):
        import paho.mqtt.client as mqtt

        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.refused = threading.Event()
        version = mqtt.MQTTv5 if protocol == "v5" else mqtt.MQTTv311
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=version)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, message: self.received.append((message.topic, message.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties=None) -> None:
        (self.refused if reason_code.is_failure else self.connected).set()

    def wait(self) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (self.connected.is_set() or self.refused.is_set()):
            time.sleep(0.02)
        return self.connected.is_set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.broker
def test_real_mosquitto_enforces_the_committed_acl_and_passwords(tmp_path: Path) -> None:
    executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(executable).exists():
        _require("mosquitto is not installed (apt-get install mosquitto)")
    pytest.importorskip("paho.mqtt.client")
    from footfall.edge.config import load_config

    config = load_config(AGENT_CONFIG)
    passwords = demo_passwords()
    port = free_port()
    broker = subprocess.Popen(
        [executable, "-c", str(_broker_config(tmp_path, port))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    clients: list[_Client] = []
    try:
        wait_for_port(port)
        from footfall.core.wire import subscription_filters

        # The server's consumer subscribes as it does in production (aggregates on a shared subscription);
        # an observer with the same rights catches anything the ACL should have stopped.
        consumer_filters = [
            f"$share/footfall-server/{f}" if f.endswith("/aggregates") else f for f in subscription_filters()
        ]
        server = _Client(port, "footfall-server", passwords["SERVER_MQTT_PASSWORD"], protocol="v5")
        observer = _Client(port, "footfall-server", passwords["SERVER_MQTT_PASSWORD"])
        clients += [server, observer]
        assert server.wait() and observer.wait(), "the server user cannot log in with the demo password"
        server.client.subscribe([(topic, 1) for topic in consumer_filters])
        observer.client.subscribe("footfall/v1/#", qos=1)
        agent = _Client(port, config.mqtt.username, passwords["AGENT_MQTT_PASSWORD"])
        clients.append(agent)
        assert agent.wait(), "the demo agent cannot log in with the demo password"
        for user, password in ((None, None), (config.mqtt.username, "wrong-password"), ("nobody", "x")):
            intruder = _Client(port, user, password)
            clients.append(intruder)
            assert not intruder.wait(), f"broker let {user or 'an anonymous client'} in"
        time.sleep(0.3)  # subscriptions in place
        own = f"footfall/v1/{config.site_id}/{config.agent_id}"
        allowed = [f"{own}/aggregates", f"{own}/status"]
        denied = [
            f"footfall/v1/{config.site_id}/another-agent/aggregates",
            f"footfall/v1/other-site/{config.agent_id}/aggregates",
            "footfall/v1/x",
        ]
        for topic in allowed + denied:
            agent.client.publish(topic, topic.encode(), qos=1).wait_for_publish(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len({t for t, _ in server.received}) < len(allowed):
            time.sleep(0.05)
        time.sleep(0.3)  # anything wrongly let through would arrive by now
        assert {topic for topic, _ in server.received} == set(allowed)
        assert {topic for topic, _ in observer.received} == set(allowed)
        # An agent may not read others' counts, nor the server publish as an agent.
        spy = _Client(port, config.mqtt.username, passwords["AGENT_MQTT_PASSWORD"])
        clients.append(spy)
        assert spy.wait()
        spy.client.subscribe("footfall/v1/#", qos=1)
        time.sleep(0.3)
        server.client.publish(f"{own}/aggregates", b"forged", qos=1).wait_for_publish(timeout=5)
        agent.client.publish(f"{own}/status", b"again", qos=1).wait_for_publish(timeout=5)
        # The compose health check's login: it reads the broker's uptime and nothing else.
        health = _Client(port, "healthcheck", passwords["MQTT_HEALTHCHECK_PASSWORD"])
        clients.append(health)
        assert health.wait()
        health.client.subscribe([("$SYS/broker/uptime", 0), ("footfall/v1/#", 0), ("$SYS/#", 0)])
        time.sleep(0.5)
        assert spy.received == []
        assert (f"{own}/aggregates", b"forged") not in server.received
        # Receipts: the server may send them; an agent reads its own and the servers' online notices only.
        server.client.publish(f"{own}/receipts", b"yours", qos=1).wait_for_publish(timeout=5)
        server.client.publish(f"footfall/v1/{config.site_id}/another-agent/receipts", b"not", qos=1)
        server.client.publish("footfall/v1/_servers/online", b"hello", qos=1).wait_for_publish(timeout=5)
        # The site's demographics mode (retained): the server sends it, the site's agents read it.
        settings = f"footfall/v1/{config.site_id}/settings"
        server.client.publish(settings, b"mode", qos=1, retain=True).wait_for_publish(timeout=5)
        server.client.publish("footfall/v1/other-site/settings", b"not", qos=1, retain=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(spy.received) < 3:
            time.sleep(0.05)
        time.sleep(0.3)
        assert sorted(spy.received) == [
            ("footfall/v1/_servers/online", b"hello"),
            (f"{own}/receipts", b"yours"),
            (settings, b"mode"),
        ]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not health.received:
            time.sleep(0.05)
        assert {topic for topic, _ in health.received} == {"$SYS/broker/uptime"}
    finally:
        for client in clients:
            client.close()
        broker.terminate()
        broker.wait(timeout=10)


# --- secrets ---------------------------------------------------------------------------------------------


def demo_passwords() -> dict[str, str]:
    """The ``${NAME:-default}`` password defaults of docker-compose.yml."""
    text = COMPOSE_FILE.read_text()
    return {m["name"]: m["default"] for m in DEFAULT_PATTERN.finditer(text) if "PASSWORD" in m["name"]}


def test_every_committed_secret_is_a_marked_demo_one() -> None:
    passwords = demo_passwords()
    assert set(passwords) >= {
        "POSTGRES_PASSWORD",
        "SERVER_MQTT_PASSWORD",
        "AGENT_MQTT_PASSWORD",
        "MQTT_HEALTHCHECK_PASSWORD",
    }
    for name, value in passwords.items():
        if name == "GRAFANA_ADMIN_PASSWORD":
            assert value == "", "Grafana's admin password has no default (grafana refuses to start without one)"
            continue
        assert value.startswith("demo-"), f"{name} defaults to {value!r}, which is not marked as a demo secret"
    text = COMPOSE_FILE.read_text()
    assert "DEMO CREDENTIALS" in text and "deploy/README.md" in text
    # No password appears other than through a variable with a demo default.
    for match in re.finditer(r"(?i)\b(\w*password\w*)\s*[:=](?!-)\s*(\S+)", text):
        assert match[2].startswith("${"), f"hard-coded secret in docker-compose.yml: {match[0]}"
    for match in re.finditer(r"://[^:/@\s]+:([^@\s]+)@", text):
        assert match[1].startswith("${"), f"hard-coded secret in a URL in docker-compose.yml: {match[0]}"
    agent = yaml.safe_load(AGENT_CONFIG.read_text())
    assert "password" not in agent["mqtt"], "the agent config must read its password from the environment"
    readme = (REPO / "deploy" / "README.md").read_text()
    assert "Changing the demo credentials" in readme
    for name in passwords:
        assert name in readme, f"deploy/README.md does not say how to change {name}"


def test_demo_password_file_matches_the_demo_passwords() -> None:
    from footfall.edge.config import load_config

    passwords = demo_passwords()
    users = {
        "footfall-server": passwords["SERVER_MQTT_PASSWORD"],
        "healthcheck": passwords["MQTT_HEALTHCHECK_PASSWORD"],
        load_config(AGENT_CONFIG).mqtt.username: passwords["AGENT_MQTT_PASSWORD"],
    }
    entries = [line.split(":")[0] for line in DEMO_PASSWD.read_text().splitlines() if line.strip()]
    assert sorted(entries) == sorted(users), "demo.passwd should hold exactly the demo users"
    for user, password in users.items():
        assert verify_mosquitto_password(DEMO_PASSWD, user, password), f"{user}: demo password does not match"
    assert not verify_mosquitto_password(DEMO_PASSWD, "footfall-server", "wrong")


def test_add_agent_script_grants_exactly_the_new_agents_prefix(tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        _require("mosquitto_passwd is not installed (apt-get install mosquitto)")
    folder = tmp_path / "mosquitto"
    shutil.copytree(MOSQUITTO_DIR, folder)
    passwd = tmp_path / "prod.passwd"
    env = {**os.environ, "MOSQUITTO_PASSWD_FILE": str(passwd)}
    result = subprocess.run(
        ["bash", str(folder / "add-agent.sh"), "mall-north", "entrance-north"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    password = re.search(r"generated password \(shown once\): (\S+)", result.stdout)[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", password), "generated passwords must be URL-safe"
    assert verify_mosquitto_password(passwd, "entrance-north", password)
    rules = parse_acl((folder / "acl").read_text())
    assert rules["entrance-north"] == [
        ("write", "footfall/v1/mall-north/entrance-north/#"),
        ("read", "footfall/v1/mall-north/entrance-north/receipts"),
        ("read", "footfall/v1/mall-north/settings"),
        ("read", "footfall/v1/_servers/online"),
    ]
    assert rules["demo-entrance"] == parse_acl((MOSQUITTO_DIR / "acl").read_text())["demo-entrance"]
    again = subprocess.run(
        ["bash", str(folder / "add-agent.sh"), "mall-north", "entrance-north"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert again.returncode != 0 and "already has a rule" in again.stderr
    bad = subprocess.run(
        ["bash", str(folder / "add-agent.sh"), "mall/north", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2 and "not a valid id" in bad.stderr
