"""Agent configuration: a YAML file validated into pydantic models, errors named by file, line and field.

Example (see ``edge/config.example.yaml`` for every option)::

    agent_id: box-01
    site_id: mall-north
    cameras:
      - id: entrance
        source: rtsp://10.0.0.12/stream1
        fps: 15
        zones:
          - id: doorway
            polygon: [[0.1, 0.2], [0.9, 0.2], [0.9, 1.0], [0.1, 1.0]]
        lines:
          - id: threshold
            points: [[0.0, 0.6], [1.0, 0.6]]
            direction: down
    mqtt:
      host: broker.example.org
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
from footfall.core.wire import (
    DEFAULT_TOPIC_PREFIX,
    MAX_BUCKET_SECONDS,
    MIN_BUCKET_SECONDS,
    DemographicsMode,
    Identifier,
    Measure,
    bucket_seconds_problem,
)
from footfall.core.yamlerrors import describe_yaml_error, structure_problem
from footfall.edge.zones import DIRECTIONS, entrance_ids, segments_cross, segments_overlap
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

# Linux numbers video devices 0-255 (/dev/videoN).
MAX_USB_INDEX = 255
MAX_FACE_PX = 4320  # the height of an 8K frame: no face is taller than its frame
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
WHOLE_FRAME = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
WHOLE_FRAME_ZONE_ID = "frame"
ENTRANCE_ID_MAX = 60  # ids are at most 64 characters, and an entrance's "<id>.out" must be one


class ConfigError(ValueError):
    """A configuration that cannot be used; the text is one line naming file, line and field."""


class FieldProblem(ValueError):
    """A problem a model's validator finds in one field below the model (a repeated id: the repeat's own ``id``), so
    that the error names that field and its line. As a plain ValueError it was put at the model's first line: line 1
    for a camera id repeated anywhere in the config."""

    def __init__(self, message: str, location: tuple[str | int, ...]):
        super().__init__(message)
        self.location = location  # below the model whose validator raised it


def _first_repeat(ids: list[str]) -> tuple[int, int] | None:
    """The index of the first id that repeats an earlier one, and that earlier one's; None when all differ."""
    first: dict[str, int] = {}
    for index, name in enumerate(ids):
        if name in first:
            return index, first[name]
        first[name] = index
    return None


class _Model(BaseModel):
    # Finite numbers only: '.inf' passed every lower bound (min_face_px: .inf ignored every face without a word).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]


class ZoneConfig(_Model):
    """A named polygon in normalised image coordinates (0..1, x right, y down)."""

    id: Identifier
    polygon: list[Point] = Field(min_length=3, description="At least three [x, y] corners, 0..1.")

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, polygon: list[Point]) -> list[Point]:
        # An outline that goes round twice, or back along itself, crosses nowhere, yet a point inside it is inside
        # an even number of times: ray casting reads it as outside, and the zone counted nobody without a word.
        outline = polygon[:-1] if len(polygon) > 3 and polygon[-1] == polygon[0] else polygon  # closed by hand
        for i, corner in enumerate(outline):
            if corner in outline[i + 1 :]:
                raise ValueError(
                    f"polygon corner [{corner[0]:g}, {corner[1]:g}] is given twice; its outline must go round once"
                )
        edges = list(zip(polygon, polygon[1:] + polygon[:1], strict=True))
        for i, (a, b) in enumerate(edges):
            for c, d in edges[i + 1 :]:
                if segments_overlap(a, b, c, d):
                    raise ValueError("polygon edges run along each other; its outline must go round once")
            for c, d in edges[i + 2 :]:
                if (c, d) != edges[i - 1] and segments_cross(a, b, c, d):
                    raise ValueError("polygon edges cross each other; list the corners in order around it")
        corners = zip(polygon, polygon[1:] + polygon[:1], strict=True)
        area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in corners))
        if area < 1e-4:
            raise ValueError("polygon has no area (corners on one line or repeated)")
        return polygon


class LineConfig(_Model):
    """A counting line from ``points[0]`` to ``points[1]``; people crossing it in ``direction`` are counted.

    ``direction`` is the way people walk when they count, as seen in the image: ``right`` on a vertical line
    counts people crossing it from left to right; ``any`` counts a crossing either way.

    An ``entrance`` line counts both ways instead: people crossing in ``direction`` (the way in) as
    ``<id>.in``, people crossing back as ``<id>.out``; a site's visitors and occupancy come from these.
    """

    id: Identifier
    points: tuple[Point, Point]
    direction: Literal["any", "left", "right", "up", "down"] = "any"
    entrance: bool = Field(
        default=False,
        description="A door or mall entrance: count people going in (direction) and out (the other way).",
    )

    @model_validator(mode="after")
    def _usable(self) -> LineConfig:
        (x1, y1), (x2, y2) = self.points
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        if length < 0.01:
            raise ValueError("line points are (almost) the same point")
        if self.entrance and self.direction == "any":
            raise ValueError("an entrance line needs the way in as its direction (left, right, up or down), not 'any'")
        if self.entrance and len(self.id) > ENTRANCE_ID_MAX:
            raise ValueError(f"an entrance line's id has at most {ENTRANCE_ID_MAX} characters (it gains '.out')")
        if self.direction != "any":
            dx, dy = DIRECTIONS[self.direction]
            normal = (-(y2 - y1) / length, (x2 - x1) / length)
            if abs(dx * normal[0] + dy * normal[1]) < 0.2:
                raise ValueError(f"direction '{self.direction}' runs along the line, so nobody can cross it that way")
        return self


class CameraConfig(_Model):
    id: Identifier
    source: str | int = Field(description="RTSP/HTTP/MJPEG URL, USB device index (0, 1, ...) or a video file path.")
    fps: float = Field(default=15.0, gt=0, le=120, description="Most frames processed per second.")
    realtime: bool = Field(
        default=True,
        description="For a video file: play it at its own frame rate (True) or process every frame (False; at most "
        "10 minutes ahead of the clock, as a server defers counts dated later).",
    )
    loop: bool = Field(default=False, description="For a video file: start again at its end (demos, pilots).")
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)

    @field_validator("source", mode="before")
    @classmethod
    def _not_yes_or_no(cls, value: object) -> object:
        # YAML reads an unquoted true/on/yes as True, which pydantic would take as USB device 1 (and off as 0).
        if isinstance(value, bool):
            raise ValueError(
                "YAML reads this word as a yes/no value: give a USB device index (0, 1, ...), a URL, "
                "or quote a file name"
            )
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | int) -> str | int:
        if isinstance(value, int):
            if not 0 <= value <= MAX_USB_INDEX:
                raise ValueError(f"a USB device index is 0 to {MAX_USB_INDEX} (/dev/video0 and on)")
            return value
        text = value.strip()
        if not text:
            raise ValueError("source is empty")
        if text.isascii() and text.isdigit():  # '²' and '٠' are digits to str.isdigit, not device indexes
            return cls._source(int(text))
        if "://" in text and not text.lower().startswith(STREAM_SCHEMES):
            raise ValueError(f"unsupported URL scheme in {text!r}; use one of {', '.join(STREAM_SCHEMES)}")
        return text

    @model_validator(mode="after")
    def _unique_ids(self) -> CameraConfig:
        places = [("zones", i) for i in range(len(self.zones))] + [("lines", i) for i in range(len(self.lines))]
        repeat = _first_repeat([z.id for z in self.zones] + [line.id for line in self.lines])
        if repeat is not None:
            (kind, index), (first_kind, first_index) = places[repeat[0]], places[repeat[1]]
            repeated = (self.zones[index] if kind == "zones" else self.lines[index]).id
            raise FieldProblem(
                f"zone and line ids must be unique per camera; {repeated!r} is {first_kind}[{first_index}]'s already",
                (kind, index, "id"),
            )
        # Each count of a camera is sent under its own id (see measures()), so no two may share one.
        zone_ids = [z.id for z in self.counting_zones()]
        if self.id in zone_ids + [line.id for line in self.lines]:
            raise ValueError(
                f"zone or line id {self.id!r} is the camera's own id, under which its visitors are counted; "
                "rename one of them"
            )
        taken = set(zone_ids) | {line.id for line in self.lines}
        for line in self.lines:
            if line.entrance:
                clashes = sorted(set(entrance_ids(line.id)) & taken)
                if clashes:
                    raise ValueError(
                        f"entrance line {line.id!r} counts under {' and '.join(entrance_ids(line.id))}, but "
                        f"{', '.join(clashes)} is already a zone or line id; rename one of them"
                    )
                taken.update(entrance_ids(line.id))
        return self

    def field_sending(self, name: str) -> tuple[str | int, ...]:
        """Where in this camera's config the aggregate id ``name`` of :meth:`measures` comes from: a zone's or line's
        ``id`` (an entrance line's in and out ids too), else the camera's own ``id`` (its visitors, or the whole frame
        counted where it has neither zones nor lines)."""
        for index, zone in enumerate(self.zones):
            if zone.id == name:
                return ("zones", index, "id")
        for index, line in enumerate(self.lines):
            if name == line.id or (line.entrance and name in entrance_ids(line.id)):
                return ("lines", index, "id")
        return ("id",)

    def measures(self) -> dict[str, Measure]:
        """What each of this camera's aggregate ids counts (core.wire Measure): a zone's or a counting line's
        passes, an entrance line's people in and out, and, under the camera's own id, its distinct visitors."""
        measures: dict[str, Measure] = {zone.id: "passes" for zone in self.counting_zones()}
        for line in self.lines:
            if line.entrance:
                way_in, way_out = entrance_ids(line.id)
                measures[way_in], measures[way_out] = "in", "out"
            else:
                measures[line.id] = "passes"
        measures[self.id] = "camera"
        return measures

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, str) and "://" not in self.source

    def counting_zones(self) -> list[ZoneConfig]:
        """The zones to count in; a camera with neither zones nor lines counts the whole frame."""
        if not self.zones and not self.lines:
            return [ZoneConfig(id=WHOLE_FRAME_ZONE_ID, polygon=list(WHOLE_FRAME))]
        return list(self.zones)


def _ssl_reason(exc: ssl.SSLError | OSError) -> str:
    """OpenSSL's reason in words ('no certificate or crl found'), without its source file and line."""
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or "unreadable").lower().replace("_", " ")
    return exc.strerror or str(exc)


# The certificate fields, and what each must hold as its error says it.
CERTIFICATE_FIELDS = {"ca_file": "PEM CA certificate", "cert_file": "PEM certificate"}


def certificate_problem(path: Path, kind: str) -> str | None:
    """Why ``path`` cannot be the ``kind`` of certificate (CERTIFICATE_FIELDS), or None."""
    try:  # a client certificate loads as a trust anchor too: the check needs no key
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        return f"{path} is not a {kind} ({_ssl_reason(exc)})"
    return None


def key_problem(cert_file: Path, key_file: Path) -> str | None:
    """Why ``key_file`` cannot be the private key of ``cert_file``, or None."""

    def no_passphrase() -> str:
        # The agent has no passphrase to give, and must never stop at a terminal prompt for one.
        raise ValueError("the key is encrypted")

    try:
        ssl.create_default_context().load_cert_chain(str(cert_file), str(key_file), password=no_passphrase)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else _ssl_reason(exc)
        return f"key_file {key_file} is not the PEM private key of cert_file {cert_file} ({reason})"
    return None


class TlsConfig(_Model):
    ca_file: Path | None = Field(default=None, description="CA bundle (PEM); the system's when empty.")
    cert_file: Path | None = Field(default=None, description="Client certificate (PEM), with key_file.")
    key_file: Path | None = Field(default=None, description="The client certificate's private key (PEM, unencrypted).")
    insecure: bool = Field(default=False, description="Skip host name checks (testing only).")

    # Each file is loaded as the MQTT client will load it: one that is there but not PEM failed only at start,
    # with an ssl.SSLError traceback.
    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
        return path

    @field_validator("ca_file", "cert_file")
    @classmethod
    def _pem(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is not None and (problem := certificate_problem(path, CERTIFICATE_FIELDS[str(info.field_name)])):
            raise ValueError(problem)
        return path

    @model_validator(mode="after")
    def _client_certificate(self) -> TlsConfig:
        cert, key = self.cert_file, self.key_file
        if (cert is None) != (key is None):
            raise ValueError("cert_file and key_file go together (client certificate)")
        if cert is not None and key is not None and (problem := key_problem(cert, key)):
            raise ValueError(problem)
        return self

    def problem(self) -> str | None:
        """The first file that cannot be loaded, as ``mqtt.tls.<field>: why`` (the files may have changed since the
        config was read), or None."""
        for name, kind in CERTIFICATE_FIELDS.items():
            path = getattr(self, name)
            if path is not None and (problem := certificate_problem(path, kind)):
                return f"mqtt.tls.{name}: {problem}"
        cert, key = self.cert_file, self.key_file
        if cert is not None and key is not None and (problem := key_problem(cert, key)):
            return f"mqtt.tls: {problem}"
        return None


class MqttConfig(_Model):
    host: str = Field(default="localhost", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool | TlsConfig = False
    username: str | None = None
    password: str | None = Field(default=None, description="Or set password_env to read it from the environment.")
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    client_id: str | None = Field(default=None, max_length=128, description="Default: footfall-<agent_id>.")
    topic_prefix: str = Field(default=DEFAULT_TOPIC_PREFIX, min_length=1, pattern=r"^[^#+]+$")
    keepalive: int = Field(default=30, ge=5, le=3600)
    heartbeat_seconds: float = Field(default=30.0, ge=1, le=3600)
    resend_seconds: float = Field(
        default=10.0,
        ge=1,
        le=3600,
        description="An aggregate the server has not confirmed is sent again after this long, then after "
        "twice as long each time, up to resend_max_seconds.",
    )
    resend_max_seconds: float = Field(default=600.0, ge=1, le=86_400)

    @field_validator("host")
    @classmethod
    def _host_alone(cls, value: str) -> str:
        """A name or an address and nothing more: paho looks the whole text up, so 'mqtt://host:1883' (the form
        ``footfall server --mqtt`` takes) or 'host:1883' passed the check and then failed every connection with
        'Name or service not known'. A bare IPv6 address has colons of its own and is kept."""
        if problem := _broker_host_problem(value):
            raise ValueError(problem)
        return value

    def resolved_password(self) -> str | None:
        """The password; raises :class:`ConfigError` when ``password_env`` names a variable that is not set (the
        agent would connect without one, and a broker with an ACL refuses it with a less helpful reason)."""
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(
                    f"mqtt.password_env: the environment variable {self.password_env} is not set "
                    "(the service's environment file sets it; set it in this shell to check the config)"
                )
            return password
        return self.password


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _split_hint(host: str, port: str | int | None) -> str:
    said = f"port: {port}" if port is not None else "port"
    return f"split it into host: {host} and {said} (mqtt.host and mqtt.port)"


def _broker_host_problem(value: str) -> str | None:
    """Why ``mqtt.host`` is more than a host (a URL, a ':port' suffix, a path), with the fields to write instead; None
    when it is a name or an address (a bare IPv6 address included: paho takes it without brackets)."""
    if "://" in value:
        try:
            url = urlsplit(value)
            host = url.hostname
        except ValueError:  # an unclosed '['
            shown = "this is a URL" if "@" in value else f"{value!r} is a URL"
            return f"{shown}; give the broker's name or address alone, and its port in mqtt.port"
        try:
            port = url.port
        except ValueError:  # out of range, or not a number
            port = None
        secure = url.scheme.lower() in ("mqtts", "ssl")
        if port is None and ":" not in url.netloc.rpartition("@")[2].rpartition("]")[2]:
            port = 8883 if secure else 1883  # no port in the URL: its scheme's
        # A URL may carry a password: it is not repeated into the log.
        shown = "this is a URL with a password" if url.password else f"{value!r} is a URL"
        if not host:
            return f"{shown}; give the broker's name or address alone, and its port in mqtt.port"
        also = (["tls: true"] if secure else []) + (
            [f"username: {url.username} with password_env naming the variable that holds the password"]
            if url.username
            else []
        )
        more = f"; also {' and '.join(also)}" if also else ""
        return f"{shown}; the agent takes the broker's host and port apart: {_split_hint(host, port)}{more}"
    if value.startswith("["):
        inside, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            return f"{value!r} has a port: {_split_hint(inside, rest[1:])}"
        return f"{value!r}: write an IPv6 address without the brackets (host: {inside}); its port goes in mqtt.port"
    if "/" in value:
        return f"{value!r} has a '/': mqtt.host takes only the broker's name or address (no path or URL)"
    if ":" in value and not _is_ip_address(value):
        name, _, suffix = value.rpartition(":")
        if value.count(":") == 1 and suffix.isdigit():
            return f"{value!r} has a port: {_split_hint(name, suffix)}"
        return f"{value!r} has a ':' but is not an IPv6 address; give the port on its own in mqtt.port"
    return None


class OutboxConfig(_Model):
    path: Path = Field(default=Path("footfall-outbox.sqlite"), description="SQLite file (its folder is made).")
    max_messages: int = Field(default=200_000, ge=10, description="Cap; the oldest are dropped, with a warning.")


class BundlesConfig(_Model):
    detector: Path = DEFAULT_DETECTOR_BUNDLE
    gender: Path = DEFAULT_GENDER_BUNDLE


class DetectionConfig(_Model):
    input_width: int = Field(default=640, ge=160, le=3840, description="Frames are downscaled to this width.")
    score_threshold: float | None = Field(default=None, gt=0, lt=1, description="Default: the bundle's.")
    min_face_px: float = Field(
        default=16, ge=4, le=MAX_FACE_PX, description="Smaller faces (in frame pixels) are ignored."
    )
    threads: int | None = Field(
        default=None, ge=1, le=64, description="onnxruntime threads per model (detector and classifier)."
    )


class TrackingConfig(_Model):
    confirm_hits: int = Field(
        default=4,
        ge=1,
        le=30,
        description="Detections before a track counts; while a camera's frames are processed at most 8 a second, "
        "three spanning as long as these take at 10 a second are enough (edge/README.md, 'When the box falls "
        "behind').",
    )
    max_lost_seconds: float = Field(
        default=3.5,
        gt=0,
        le=30,
        description="How long a lost face may be hidden (or turned away) and still be the same person.",
    )


class ClassificationConfig(_Model):
    samples_per_track: int = Field(default=4, ge=1, le=20, description="Crops classified per person, best ones.")


class MetricsConfig(_Model):
    """Prometheus metrics at ``http://host:port/metrics``; on by default, on this machine only."""

    enabled: bool = Field(default=True, description="false: no metrics endpoint.")
    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on: 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one "
        "interface's address.",
    )
    port: int = Field(default=9464, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        text = value.strip()
        if text == "localhost":
            return text
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address to listen on; use 127.0.0.1 (this machine only), "
                "0.0.0.0 (every interface) or an interface's address"
            ) from None
        return text


class AgentConfig(_Model):
    agent_id: Identifier
    site_id: Identifier
    cameras: list[CameraConfig] = Field(min_length=1)
    bucket_seconds: int = Field(default=60, ge=MIN_BUCKET_SECONDS, le=MAX_BUCKET_SECONDS)
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    bundles: BundlesConfig = BundlesConfig()
    detection: DetectionConfig = DetectionConfig()
    tracking: TrackingConfig = TrackingConfig()
    classification: ClassificationConfig = ClassificationConfig()
    metrics: MetricsConfig = MetricsConfig()
    demographics: DemographicsMode = Field(
        default="full",
        description="A floor the server cannot loosen: 'gender-only' estimates no age, 'counts-only' loads no "
        "classifier whatever the site's mode, 'off' reads no camera. The site's mode (set on the server) applies "
        "where it is stricter.",
    )

    @field_validator("bucket_seconds")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if problem := bucket_seconds_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _unique_cameras(self) -> AgentConfig:
        repeat = _first_repeat([c.id for c in self.cameras])
        if repeat is not None:
            index, first_index = repeat
            raise FieldProblem(
                f"camera ids must be unique; {self.cameras[index].id!r} is cameras[{first_index}]'s already",
                ("cameras", index, "id"),
            )
        # The server adds up everything sent under one id of a site as one kind of count: an id that one camera
        # sends zone passes under and another its visitors or an entrance's in-count would be refused there.
        seen: dict[str, tuple[str, Measure]] = {}
        for index, camera in enumerate(self.cameras):
            for name, measure in camera.measures().items():
                first = seen.setdefault(name, (camera.id, measure))
                if first[1] != measure:
                    raise FieldProblem(  # at the second camera's field that sends it (was: line 1)
                        f"id {name!r} counts {first[1]} on camera {first[0]!r} but {measure} on camera "
                        f"{camera.id!r}: the server keeps one kind of count per id; rename one of them",
                        ("cameras", index, *camera.field_sending(name)),
                    )
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"footfall-{self.agent_id}"


# ---------------------------------------------------------------------------------------------------------
# Loading with positions: YAML is composed into nodes first, so a pydantic error location can be mapped back
# to the line of the offending value.


def _node_at(node: yaml.Node | None, location: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along ``location`` (keys and list indices)."""
    for part in location:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if child is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
                return key or node
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _field_path(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before", "int", "str", "bool", "TlsConfig"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "config"


def _clean_location(location: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds the union member tried ("str", "int", "TlsConfig") to the location; drop it.
    return tuple(
        p for p in location if p not in ("str", "int", "bool", "TlsConfig") and not str(p).startswith("function-")
    )


# The values each scalar member of a union takes, as said to the user; any other member is a model (a mapping).
_UNION_SCALARS = {"bool": ["true", "false"], "int": ["an integer"], "str": ["a string"]}


def _member_tag(location: tuple[Any, ...]) -> int | None:
    """Where in ``location`` pydantic put the union member it tried (``str``, ``TlsConfig``, ...), or None."""
    for index, part in enumerate(location):
        if part in _UNION_SCALARS or part == "TlsConfig" or str(part).startswith("function-"):
            return index
    return None


def _union_errors(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """pydantic reports a value that fits no member of a union (``tls: bool | TlsConfig``) once per member, so a
    TLS file problem came with 'Input should be a valid boolean'. Only the member the value was meant for has the
    real problem: a mapping's are its model's; any other value gets one line naming what the field takes."""
    kept: list[ErrorDetails] = []
    unions: dict[tuple[Any, ...], list[tuple[str, ErrorDetails]]] = {}
    for item in errors:
        tag = _member_tag(item["loc"])
        if tag is None:
            kept.append(item)
        else:
            unions.setdefault(tuple(item["loc"][:tag]), []).append((str(item["loc"][tag]), item))
    for location, members in unions.items():
        models = [item for tag, item in members if tag not in _UNION_SCALARS]
        value = next((item["input"] for _, item in members if len(item["loc"]) == len(location) + 1), None)
        if isinstance(value, dict) and models:
            kept.extend(models)
            continue
        takes = [word for tag in dict.fromkeys(tag for tag, _ in members) for word in _member_words(tag)]
        said = ", ".join(takes[:-1]) + f" or {takes[-1]}" if len(takes) > 1 else takes[0]
        kept.append({"type": "union", "loc": location, "msg": f"Input should be {said}", "input": value})
    return kept


def _member_words(tag: str) -> list[str]:
    return _UNION_SCALARS.get(tag, ["a mapping of its settings"])


# Pydantic's error types for a value that should have been text or one of some words.
TEXT_EXPECTED = frozenset({"string_type", "literal_error", "enum", "union_tag_invalid"})
_YAML_TYPES = {
    "tag:yaml.org,2002:bool": "a yes/no value",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def _yaml_read_as(node: yaml.Node | None) -> tuple[str, str] | None:
    """An unquoted word meant as text and what YAML made of it (``off``: a yes/no value, ``0123``: a number), or
    None when it was text or quoted."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None or node.tag not in _YAML_TYPES:
        return None
    return str(node.value), _YAML_TYPES[node.tag]


def describe_validation_error(error: ValidationError, source: str, root: yaml.Node | None) -> str:
    """All problems on one line (``file:line: field: message; ...``), at most three spelled out."""
    problems = []
    for item in _union_errors(error.errors()):
        location = _clean_location(item["loc"])
        if isinstance(problem := item.get("ctx", {}).get("error"), FieldProblem):
            location += problem.location
        node = _node_at(root, location)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see edge/config.example.yaml)"
        elif item["type"] == "missing":
            message = "field required"
        elif (read_as := _yaml_read_as(node)) is not None and item["type"] in TEXT_EXPECTED:
            # 'demographics: off' came out as "should be ... or 'off'": YAML had read the word as false.
            word, kind = read_as
            message = f'YAML reads {word} as {kind}, not as text: quote it ({location[-1]}: "{word}")'
        problems.append(f"{source}{line}: {_field_path(location)}: {message}")
    text = "; ".join(problems[:3])
    if len(problems) > 3:
        text += f" (and {len(problems) - 3} more)"
    return text


TLS_FILE_FIELDS = ("ca_file", "cert_file", "key_file")


def _tls_files_beside(data: dict[str, Any], base: Path) -> None:
    """Makes the TLS file names of a config's raw ``data`` relative to ``base`` (the config's folder), in place,
    before they are validated: validation loads the files, so it must read them where the agent will."""
    mqtt = data.get("mqtt")
    tls = mqtt.get("tls") if isinstance(mqtt, dict) else None
    if not isinstance(tls, dict):
        return
    for name in TLS_FILE_FIELDS:
        value = tls.get(name)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            tls[name] = str(base / value)


def parse_config(text: str, source: str = "<config>", base: Path | None = None) -> AgentConfig:
    """The config in ``text`` (``source`` names it in errors); with ``base``, relative TLS file names are read from
    that folder (:func:`load_config` passes the config file's)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(describe_yaml_error(exc, source)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: config must be a mapping of fields (agent_id, site_id, cameras, ...)")
    repeated = structure_problem(root, source)
    if repeated is not None:
        raise ConfigError(repeated)
    if base is not None:
        _tls_files_beside(data, base)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, root)) from None


def load_config(path: str | Path) -> AgentConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config ({exc})") from None
    # Relative paths in a config are relative to the config file, not to wherever the agent was started.
    base = file.resolve().parent
    config = parse_config(text, str(file), base)
    updates: dict[str, Any] = {}
    if not config.outbox.path.is_absolute():
        updates["outbox"] = config.outbox.model_copy(update={"path": base / config.outbox.path})
    bundles = {k: base / v for k, v in config.bundles.model_dump().items() if not Path(v).is_absolute()}
    if bundles:
        updates["bundles"] = config.bundles.model_copy(update=bundles)
    cameras = []
    for camera in config.cameras:
        if camera.is_file and not Path(str(camera.source)).is_absolute():
            camera = camera.model_copy(update={"source": str(base / str(camera.source))})
        cameras.append(camera)
    updates["cameras"] = cameras
    return config.model_copy(update=updates)


def offline_camera(source: str) -> CameraConfig:
    """The camera of ``footfall process VIDEO`` without a config: the whole frame is one zone."""
    return CameraConfig(id="video", source=source, realtime=False)
