"""Frame sources: a capture thread per camera that reconnects with backoff and hands over only the newest
frame (a slow pipeline drops frames instead of falling behind), and a sequential reader for video files.

Frames live in memory only and are dropped as soon as the next one arrives.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from footfall.core.logs import log_event
from footfall.edge.config import CameraConfig

if TYPE_CHECKING:
    import cv2
    from footfall.edge.metrics import CameraMetrics

logger = logging.getLogger("footfall.edge.capture")

# OpenCV and FFmpeg print their own warnings straight to stderr (a corrupt file gives "moov atom not found"
# plus an OpenCV warning); the agent reports the problem itself, in one line. FOOTFALL_VIDEO_DEBUG=1 shows
# the native messages when diagnosing a stream. Set before OpenCV first touches FFmpeg.
if not os.environ.get("FOOTFALL_VIDEO_DEBUG"):
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

# Frames in a row a video file may fail to decode before its reader takes it for ended: a damaged packet costs its
# frame, not the rest of the file (one bad packet of 280 ended a clip at frame 36). A file whose container gives its
# frame count is read to that count (a damaged second of a 25 fps file is 25 frames), a failed read at its end being
# quick; one without is taken for ended after MAX_UNDECODABLE_RUN, and one whose count is absurd after the other.
MAX_UNDECODABLE_RUN = 25
MAX_UNDECODABLE_RUN_COUNTED = 100_000
# How far ahead of the clock a video file played frame by frame (realtime: false) may run: its frames are dated from
# the moment it started, one frame interval apart, and a server stores counts dated at most 15 minutes ahead at once
# (footfall.core.wire.FUTURE_TOLERANCE_S; later ones wait in the outbox). Beyond this lead, frames wait for the
# clock.
MAX_LEAD_S = 600.0
SKIPPED_FRAMES = "frames that could not be decoded were skipped (damaged file?); the others keep their times"
OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 10_000
DEFAULT_FILE_FPS = 25.0
NOT_A_VIDEO = "not a video OpenCV can read (not a video file, or corrupt)"
VIDEO_DEVICES = Path("/dev")  # where a USB camera's index N is the device videoN
STOP_POLL_S = 0.2  # how soon a capture waiting for its stream (or its turn to open it) sees that it must stop

# OpenCV's FFmpeg backend opens one source at a time per process (a lock inside OpenCV): a camera whose open waits
# for its timeout holds every other camera's open, and a camera waiting there cannot be told to stop. The captures
# take turns here instead, where a stopping one gives up its turn; a stream is probed (see probe_stream) before its
# turn, so one that never answers does not take it at all.
_OPENING = threading.Lock()


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the text is one line naming the source."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    t: float  # epoch seconds the frame shows
    index: int


# A secret given as key=value in a URL's path or query (``?user=admin&pwd=…``, Dahua's ``/user=admin&password=…``):
# the value is masked up to the next separator.
_SECRET_PARAMETER = re.compile(
    r"(?i)((?:^|[/?&;_])(?:pass(?:word|wd)?|pwd|token|secret|api_?key|key|auth\w*|sig(?:nature)?|credentials?)=)[^&;?#/]*"
)


def describe_source(source: str | int) -> str:
    """The source for logs and the status the agent publishes, with what could be a secret masked: the password of
    a URL's user information and the values of password-like parameters."""
    if isinstance(source, int):
        return f"USB camera {source}"
    if "://" not in source:
        return source
    scheme, rest = source.split("://", 1)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        # The user information ends at the last '@' of the authority (as FFmpeg reads it): a password may hold '@'.
        credentials, host = authority.rsplit("@", 1)
        authority = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://{authority}" + _SECRET_PARAMETER.sub(r"\1***", tail)


def _quiet_opencv() -> None:
    import cv2

    if not os.environ.get("FOOTFALL_VIDEO_DEBUG"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def open_capture(
    source: str | int, *, open_timeout_ms: int | None = None, read_timeout_ms: int | None = None
) -> cv2.VideoCapture | None:
    """Opens a cv2.VideoCapture whose open and reads time out inside FFmpeg (default OPEN_TIMEOUT_MS and
    READ_TIMEOUT_MS), so a stream that never answers returns instead of holding a thread in OpenCV for ever;
    returns None if it cannot be opened (:func:`cannot_open_reason` says why)."""
    import cv2

    _quiet_opencv()

    try:
        if isinstance(source, int):
            capture = cv2.VideoCapture(source)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                OPEN_TIMEOUT_MS if open_timeout_ms is None else open_timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                READ_TIMEOUT_MS if read_timeout_ms is None else read_timeout_ms,
            ]
            capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    except (cv2.error, OverflowError, ValueError):  # a source OpenCV cannot even take (an index past int32)
        return None
    if not capture.isOpened():
        capture.release()
        return None
    # Small driver buffer: the newest frame is what matters, not a backlog.
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return capture


def cannot_open_reason(source: str | int, waited_s: float, open_timeout_ms: int | None = None) -> str:
    """Why :func:`open_capture` returned None after ``waited_s`` seconds, in words for the log and the status."""
    timeout_s = (OPEN_TIMEOUT_MS if open_timeout_ms is None else open_timeout_ms) / 1000
    if isinstance(source, int):
        return _usb_camera_reason(source)
    if isinstance(source, str) and "://" not in source:
        path = Path(source)
        if path.is_dir():
            return "is a folder, not a video file"
        if path.exists() and not path.is_file():
            return "not a regular file (a device or a pipe), not a video file"
        return "video file not found" if not path.is_file() else NOT_A_VIDEO
    if isinstance(source, str) and waited_s >= 0.9 * timeout_s:
        # FFmpeg gave up waiting: something took the connection (or nothing refused it) but sent no stream.
        return f"no answer within {timeout_s:g} s"
    return "cannot open the stream (unreachable, wrong URL or credentials?)"


def _usb_camera_reason(index: int) -> str:
    """Why the USB camera ``index`` (the device videoN) could not be opened: what can be seen of its device."""
    if not sys.platform.startswith("linux"):
        return f"cannot open USB camera {index} (not connected, or in use by another program?)"
    device = VIDEO_DEVICES / f"video{index}"
    if not device.exists():
        return f"no {device} (camera not connected, or its driver not loaded?)"
    if not os.access(device, os.R_OK | os.W_OK):
        return f"{device} exists but this user may not open it (add the user to the 'video' group)"
    return f"{device} exists but cannot be opened (in use by another program, or not a capture device?)"


# Schemes probed before OpenCV opens them, with their default ports. RTSP and HTTP are asked what FFmpeg asks first
# and must answer; TLS and RTMP only have to take the connection (their client speaks a handshake first).
_PROBED_PORTS = {"rtsp": 554, "http": 80, "rtsps": 322, "https": 443, "rtmp": 1935}


def probe_stream(source: str, timeout_s: float, stop: threading.Event) -> str | None:
    """Why the network stream ``source`` cannot be opened, found out before OpenCV tries, or None when it may be
    (it answered, or it is not probed: another scheme, an address this cannot read, an http source reached through
    a proxy). Connects to its host and port and, for RTSP and HTTP, asks what FFmpeg asks first (RTSP OPTIONS, HTTP
    GET) and waits for the first byte of any answer (a 401 is one), at most ``timeout_s`` seconds in all, as FFmpeg
    would. Unlike FFmpeg's, this wait takes no other camera's turn to open and ends within STOP_POLL_S of ``stop``
    being set (returning None: the caller checks ``stop``)."""
    try:
        parts = urlsplit(source)
        scheme = parts.scheme.lower()
        host, port = parts.hostname, parts.port or _PROBED_PORTS.get(scheme)
    except ValueError:  # a port FFmpeg may read otherwise: it says
        return None
    if scheme not in _PROBED_PORTS or not host or port is None:
        return None
    if scheme.startswith("http") and any(os.environ.get(name) for name in ("http_proxy", "HTTP_PROXY")):
        return None
    deadline = time.monotonic() + timeout_s
    silent = f"no answer within {timeout_s:g} s"
    addresses = _resolve(host, port, timeout_s, stop)
    if addresses is None:  # stopped, or the lookup itself failed: FFmpeg says what it makes of the name
        return None
    if isinstance(addresses, str):
        return addresses
    failure: str | None = None
    for i, (family, kind, protocol, _, address) in enumerate(addresses):
        with socket.socket(family, kind, protocol) as connection:
            connection.setblocking(False)
            error = connection.connect_ex(address)
            if error not in (0, errno.EINPROGRESS):
                failure = failure or f"cannot open the stream: {_lower_first(os.strerror(error))} ({host}:{port})"
                continue
            # Each address its share of the time left: one that drops the connection silently (a firewalled IPv6
            # address of a dual-stack name) must not leave none for the next, which FFmpeg would try too.
            share = (deadline - time.monotonic()) / (len(addresses) - i)
            ready = _wait_for(connection, time.monotonic() + share, stop, write=True)
            if stop.is_set():
                return None
            if ready is None:
                failure = silent
                continue
            error = connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                failure = failure or f"cannot open the stream: {_lower_first(os.strerror(error))} ({host}:{port})"
                continue
            if scheme not in ("rtsp", "http"):
                return None
            target = parts.path or "/"
            if parts.query:
                target += f"?{parts.query}"
            where = f"[{host}]" if ":" in host else host
            if parts.port is not None:
                where += f":{parts.port}"
            if scheme == "rtsp":  # the address without its user information: no password leaves in a probe
                request = f"OPTIONS rtsp://{where}{target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: footfall\r\n\r\n"
            else:
                request = f"GET {target} HTTP/1.1\r\nHost: {where}\r\nUser-Agent: footfall\r\nConnection: close\r\n\r\n"
            try:
                connection.sendall(request.encode("utf-8", "replace"))
            except OSError:
                return None  # it took the connection and dropped it: FFmpeg says what it makes of that
            if _wait_for(connection, deadline, stop, write=False) is None:
                return None if stop.is_set() else silent
            return None  # an answer, or a closed connection (FFmpeg says what it makes of that)
    return failure


Addresses = Sequence[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]]


def _resolve(host: str, port: int, timeout_s: float, stop: threading.Event) -> Addresses | str | None:
    """``host``'s addresses for ``port``; a reason when the name cannot be resolved or no answer came in ``timeout_s``;
    None when ``stop`` was set (within STOP_POLL_S), or the lookup failed in a way this cannot say. The C resolver
    cannot be interrupted, and a name server that does not answer held a stopping camera for its own timeout (5 s a
    try, several tries): the lookup runs in a thread of its own, and one given up on ends with the resolver."""
    deadline = time.monotonic() + timeout_s
    found: list[Addresses | str] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found.append(f"cannot open the stream: cannot resolve {host} ({getattr(exc, 'strerror', None) or exc})")
        finally:
            done.set()

    threading.Thread(target=look_up, name=f"resolve-{host}", daemon=True).start()
    while not done.wait(max(0.0, min(deadline - time.monotonic(), STOP_POLL_S))):
        if stop.is_set():
            return None
        if time.monotonic() >= deadline:
            return f"cannot open the stream: no answer from the name server for {host} within {timeout_s:g} s"
    return found[0] if found else None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _wait_for(connection: socket.socket, deadline: float, stop: threading.Event, *, write: bool) -> bool | None:
    """Waits until ``connection`` can be written (``write``) or read; None when ``deadline`` or ``stop`` comes first."""
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, writable, _ = select.select(
            [] if write else [connection], [connection] if write else [], [], min(left, STOP_POLL_S)
        )
        if readable or writable:
            return True
    return None


def file_fps(capture: cv2.VideoCapture, path: str | Path) -> float:
    """The frame rate in the video file's header; DEFAULT_FILE_FPS, with a warning naming the file, when the header
    has none that makes sense (a file's times would silently be off by the factor)."""
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS)
    if fps and math.isfinite(fps) and 1 <= fps <= 240:
        return fps
    log_event(
        logger,
        logging.WARNING,
        "video file's header has no usable frame rate; assuming one (its times are off if that is wrong)",
        video=str(path),
        header_fps=fps,
        assumed_fps=DEFAULT_FILE_FPS,
    )
    return DEFAULT_FILE_FPS


def read_decodable(capture: cv2.VideoCapture, position: int, frame_count: int | None) -> tuple[int, np.ndarray] | None:
    """The next frame of a video file that decodes and its place in the file (``position``: the place the next read
    takes), or None at the file's end. A frame that does not decode is skipped and keeps its place, so the frames
    after it keep their times; the file ends at its frame count, or (none given) after MAX_UNDECODABLE_RUN failures in
    a row."""
    failures = 0
    run = MAX_UNDECODABLE_RUN if frame_count is None else MAX_UNDECODABLE_RUN_COUNTED
    while True:
        ok, image = capture.read()
        if ok and image is not None:
            return position, image
        position += 1
        failures += 1
        if failures >= run or (frame_count is not None and position >= frame_count):
            return None


def frame_count_of(capture: cv2.VideoCapture) -> int | None:
    """The frame count the file's container gives, None where it gives none."""
    import cv2

    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if count and math.isfinite(count) and count > 0 else None


def _collapsed_url(path: Path) -> str | None:
    """The stream URL a path was made from ('rtsp:/host/x', its '//' collapsed), or None."""
    scheme, sep, rest = str(path).partition(":/")
    if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", scheme) and not rest.startswith("/"):
        return f"{scheme}://{rest}"
    return None


def _open_video_file(path: Path) -> tuple[cv2.VideoCapture, np.ndarray]:
    """The file opened and its first frame decoded; raises :class:`VideoError` (one line) when it cannot be."""
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video file")
    if path.exists() and not path.is_file():
        raise VideoError(f"{path}: not a regular file (a device or a pipe), not a video file")
    if not path.is_file():
        if url := _collapsed_url(path):  # a Path makes 'rtsp://host/x' 'rtsp:/host/x'
            raise VideoError(
                f"{url}: process reads video files; a camera's stream is the agent's (cameras[].source in its config)"
            )
        raise VideoError(f"{path}: video file not found")
    capture = open_capture(str(path))
    if capture is None:
        raise VideoError(f"{path}: {NOT_A_VIDEO}")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise VideoError(f"{path}: cannot decode any frame (corrupt or empty video)")
    return capture, first


def check_video_file(path: str | Path) -> None:
    """Opens the file and decodes its first frame, as the agent will; raises :class:`VideoError` (one line)."""
    capture, _ = _open_video_file(Path(path))
    capture.release()


class VideoFile:
    """Reads every frame of a video file in order; a reader thread decodes ahead (bounded) so decoding
    overlaps inference. Raises :class:`VideoError` for a missing, unreadable or corrupt file."""

    def __init__(self, path: str | Path, start_time: float = 0.0, prefetch: int = 4):
        self.path = Path(path)
        capture, first = _open_video_file(self.path)
        self.fps = file_fps(capture, self.path)
        self.frame_count = frame_count_of(capture)
        self.width, self.height = first.shape[1], first.shape[0]
        self.start_time = start_time
        self._capture = capture
        self._first: np.ndarray | None = first
        self._queue: Queue[tuple[int, np.ndarray] | None] = Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self.ended_early = False  # the container promised more frames than could be decoded: a damaged file
        self.skipped = 0  # frames that could not be decoded and were passed over (a damaged file)
        self._thread = threading.Thread(target=self._read, name=f"decode-{self.path.name}", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[int, np.ndarray] | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except Full:
                continue
        return False

    def _read(self) -> None:
        try:
            if self._first is None or not self._put((0, self._first)):
                return
            self._first = None
            read, position = 1, 1
            while not self._stop.is_set():
                decoded = read_decodable(self._capture, position, self.frame_count)
                if decoded is None:
                    break
                self.skipped += decoded[0] - position
                read, position = read + 1, decoded[0] + 1
                if not self._put(decoded):
                    return
            if self._stop.is_set():
                return
            if self.frame_count and position < self.frame_count - 2:
                # The container promised more frames: a damaged file. Count what could be read, say so.
                self.ended_early = True
                log_event(
                    logger,
                    logging.WARNING,
                    "video ended early; the rest could not be decoded (damaged file?)",
                    video=str(self.path),
                    frames_read=read,
                    frames_expected=self.frame_count,
                )
            if self.skipped:
                log_event(
                    logger,
                    logging.WARNING,
                    SKIPPED_FRAMES,
                    video=str(self.path),
                    frames_skipped=self.skipped,
                    frames_read=read,
                )
        finally:
            self._capture.release()
            self._put(None)

    def frames(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            position, image = item
            yield Frame(image, self.start_time + position / self.fps, position)

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except Empty:
            pass
        self._thread.join(timeout=5)


class CameraCapture:
    """Keeps the newest frame of one camera; reconnects with exponential backoff and reports its state.

    ``state`` is 'connecting', 'online' or 'offline' (with ``error``). A video file source plays at its
    own frame rate when ``camera.realtime`` (and ends, state 'offline', error 'end of video'); otherwise
    every frame is handed over in order (``get`` blocks the reader, so none is dropped).
    """

    def __init__(self, camera: CameraConfig, *, max_backoff: float = 30.0, metrics: CameraMetrics | None = None):
        self.camera = camera
        self.metrics = metrics
        self.max_backoff = max_backoff
        self.state = "connecting"
        self.error: str | None = None
        self.finished = False  # a video file has been read to its end
        self.ended = False  # ... and its last frame has been handed over
        self._resume_at = 0.0
        self._file_fps: float | None = None  # a video file's frame rate, read from its header on the first play
        self.frames_read = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ordered: Queue[Frame | None] | None = None if (not camera.is_file or camera.realtime) else Queue(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{camera.id}", daemon=True)

    def start(self) -> CameraCapture:
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Tells the capture to stop, without waiting for it (:meth:`join`): it opens nothing more, and ends within
        STOP_POLL_S unless it is inside OpenCV (an open or a read, bounded by their timeouts)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` seconds for the capture to end; whether it has (one never started has)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> bool:
        """:meth:`request_stop` and :meth:`join`. To stop several cameras, tell each first, then wait for them."""
        self.request_stop()
        return self.join(timeout)

    def get(self, timeout: float = 0.5) -> Frame | None:
        """The next frame to process, or None if none arrived within ``timeout``."""
        if self._ordered is not None:
            try:
                frame = self._ordered.get(timeout=timeout)
            except Empty:
                return None
            if frame is None:
                self.ended = True
            return frame
        with self._cond:
            if self._latest is None and not self.finished:
                self._cond.wait(timeout)
            frame, self._latest = self._latest, None
            if frame is None and self.finished:
                self.ended = True
            return frame

    def _set_state(self, state: str, error: str | None = None) -> None:
        if state != self.state or error != self.error:
            self.state, self.error = state, error

    def _offline_until_retry(self, source: str, reason: str, backoff: float) -> bool:
        """Reports the camera offline and waits ``backoff`` seconds; True when the agent stops meanwhile."""
        if self._stop.is_set():  # the failure is the stop's doing, or comes after it: nothing to report
            return True
        self._set_state("offline", f"{source}: {reason}")
        log_event(
            logger,
            logging.WARNING,
            "camera offline; retrying",
            camera=self.camera.id,
            source=source,
            reason=reason,
            retry_in_s=round(backoff, 1),
        )
        return self._stop.wait(backoff)

    def _run(self) -> None:
        stopped = self._capture_until_stopped()
        while self._ordered is not None and not self._stop.is_set():
            try:  # end marker for the ordered consumer (not needed, and maybe not taken, when stopping)
                self._ordered.put(None, timeout=0.2)
                break
            except Full:
                continue
        with self._cond:
            self._cond.notify_all()
        if stopped:  # what it was doing when stopped (a file cut off, a stream cut short) is no news: just this
            log_event(logger, logging.INFO, "camera stopped", camera=self.camera.id, frames=self.frames_read)

    def _open(self) -> cv2.VideoCapture | None:
        """The camera's source opened, once its turn comes (see _OPENING); None when it cannot be, or when the
        capture is stopped before its turn."""
        source = self.camera.source
        if isinstance(source, int):  # a USB camera: V4L2, not FFmpeg
            return open_capture(source)
        while not _OPENING.acquire(timeout=STOP_POLL_S):
            if self._stop.is_set():
                return None
        try:
            return None if self._stop.is_set() else open_capture(source)
        finally:
            _OPENING.release()

    def _report_skipped(self, skipped: int) -> None:
        if skipped:
            log_event(
                logger,
                logging.WARNING,
                SKIPPED_FRAMES,
                camera=self.camera.id,
                frames_skipped=skipped,
            )

    def _capture_until_stopped(self) -> bool:
        """Opens, reads and reopens the camera until it is stopped (True) or its video file has ended (False)."""
        backoff = 1.0
        source = describe_source(self.camera.source)
        while not self._stop.is_set():
            # The last failure's reason stays while retrying: a dead camera said 'connecting' with no error for as
            # long as each open waited for its timeout.
            self._set_state("connecting", self.error if self.state == "offline" else None)
            opening = time.monotonic()
            reason = None
            if isinstance(self.camera.source, str) and not self.camera.is_file:
                reason = probe_stream(self.camera.source, OPEN_TIMEOUT_MS / 1000, self._stop)
            capture = None if reason is not None or self._stop.is_set() else self._open()
            if self._stop.is_set():
                if capture is not None:
                    capture.release()
                return True
            if capture is None:
                reason = reason or cannot_open_reason(self.camera.source, time.monotonic() - opening)
                if self._offline_until_retry(source, reason, backoff):
                    return True
                backoff = min(backoff * 2, self.max_backoff)
                continue
            log_event(logger, logging.INFO, "camera online", camera=self.camera.id, source=source)
            self._set_state("online")
            got_frames = self._read_frames(capture)
            capture.release()
            if self._stop.is_set():
                return True
            if got_frames:
                backoff = 1.0
            if self.camera.is_file and got_frames and self.camera.loop:
                log_event(logger, logging.INFO, "video file ended; playing it again", camera=self.camera.id)
                continue
            if self.camera.is_file and got_frames:
                self.finished = True
                self._set_state("offline", "end of video")
                log_event(logger, logging.INFO, "video file ended", camera=self.camera.id, frames=self.frames_read)
                return False
            reason = "stream stopped delivering frames" if got_frames else "opened but no frame could be decoded"
            if self._offline_until_retry(source, reason, backoff):
                return True
            backoff = min(backoff * 2, self.max_backoff)
        return True

    def _read_frames(self, capture: cv2.VideoCapture) -> bool:
        """Reads until the stream fails or ends; returns whether any frame came."""
        got_any = False
        if self.camera.is_file and self._file_fps is None:  # once: a looping file would warn on every play
            self._file_fps = file_fps(capture, str(self.camera.source))
        fps = self._file_fps if self.camera.is_file else None
        frame_count = frame_count_of(capture) if self.camera.is_file else None
        # A looping file continues its own timeline: time never runs backwards between two plays.
        started = max(time.time(), self._resume_at)
        index = skipped = 0
        while not self._stop.is_set():
            if fps is not None:
                decoded = read_decodable(capture, index, frame_count)
                if decoded is None:
                    self._report_skipped(skipped)
                    return got_any
                skipped += decoded[0] - index
                index, image = decoded
            else:
                ok, image = capture.read()
                if not ok or image is None:
                    return got_any
            got_any = True
            self.frames_read += 1
            if self.metrics is not None:
                self.metrics.frames_read.inc()
            if fps is not None:
                t = started + index / fps
                self._resume_at = t + 1 / fps
                # Played in real time, each frame waits for its moment; frame by frame, only past MAX_LEAD_S.
                delay = t - time.time() - (0.0 if self.camera.realtime else MAX_LEAD_S)
                if delay > 0 and self._stop.wait(delay):
                    return got_any
            else:
                t = time.time()
            frame = Frame(image, t, index)
            index += 1
            if self._ordered is not None:
                while not self._stop.is_set():
                    try:
                        self._ordered.put(frame, timeout=0.2)
                        break
                    except Full:
                        continue
            else:
                with self._cond:
                    if self._latest is not None and self.metrics is not None:
                        self.metrics.dropped_overwritten.inc()  # the pipeline did not take the previous one
                    self._latest = frame
                    self._cond.notify_all()
        return got_any
