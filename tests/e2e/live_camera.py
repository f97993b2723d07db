"""A live test camera: plays a video file as an MJPEG-over-HTTP stream that follows the wall clock.

Like a real camera, it does not wait for its viewer: an agent that is down misses what happens meanwhile,
and one that reconnects sees the scene as it is now. A test may hold the scene still for a while (the
corridor stays empty until a restarted agent watches again), which a loaded machine needs: how long a
restart takes is not the test's to assume. Frames are served on loopback only.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from footfall.broker import free_port

BOUNDARY = "footfallframe"


def read_frames(video: Path) -> tuple[list[bytes], float]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    capture.release()
    if not frames:
        raise ValueError(f"{video}: no frames")
    return frames, fps


class LiveCamera:
    """Serves a playlist at ``http://127.0.0.1:<port>/stream.mjpg``; frame = (now - started - held) × fps.

    ``playlist`` holds video files and pauses (seconds, as a float): a pause repeats the previous clip's
    last frame, an empty scene. After the playlist the last frame stays on screen. Between :meth:`hold` and
    :meth:`release` the frame on screen repeats at the camera's rate and the playlist waits.
    """

    def __init__(self, playlist: list[Path | float]) -> None:
        self.frames: list[bytes] = []
        self.fps = 10.0
        self.marks: list[float] = []  # when each playlist item starts, in seconds from the start
        for item in playlist:
            self.marks.append(len(self.frames) / self.fps)
            if isinstance(item, Path):
                frames, self.fps = read_frames(item)
                self.frames += frames
            else:
                self.frames += [self.frames[-1]] * round(item * self.fps)
        # [first, end) wall-clock frame slots in which the playlist stood still; end None while holding.
        self.holds: list[tuple[int, int | None]] = []
        self.port = free_port()
        self.started = time.monotonic()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                # A viewer joins the scene as it is now, then gets every frame once, on the camera's
                # clock: no frame skipped or repeated because of scheduling jitter. Slots are wall-clock
                # frame times; a hold maps several slots to one playlist frame.
                slot = camera.slot()
                try:
                    while not camera.stopped.is_set():
                        jpeg = camera.frame(camera.position(slot))
                        header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(header.encode())
                        self.wfile.write(jpeg)
                        self.wfile.write(b"\r\n")
                        slot += 1
                        time.sleep(max(0.0, slot / camera.fps - camera.wall_elapsed()))
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps

    def wall_elapsed(self) -> float:
        return time.monotonic() - self.started

    def _held(self, slots: float) -> float:
        """Slots, up to wall-clock slot ``slots``, in which the playlist stood still."""
        return sum(max(0.0, min(slots, slots if end is None else end) - first) for first, end in self.holds)

    def elapsed(self) -> float:
        """Playlist time: seconds of the playlist shown so far (held time does not count)."""
        slots = self.wall_elapsed() * self.fps
        return (slots - self._held(slots)) / self.fps

    def slot(self) -> int:
        return int(self.wall_elapsed() * self.fps)

    def position(self, slot: int) -> int:
        """The playlist frame shown in wall-clock frame slot ``slot``."""
        return slot - int(self._held(slot))

    def hold(self) -> None:
        """Stops the playlist at the next frame, which is shown again at the camera's rate until
        :meth:`release`."""
        assert not self.holds or self.holds[-1][1] is not None, "already holding"
        self.holds.append((self.slot() + 1, None))

    def release(self) -> None:
        """The playlist goes on from where it was held."""
        first, end = self.holds[-1]
        assert end is None, "not holding"
        self.holds[-1] = (first, max(first, self.slot() + 1))

    def frame(self, index: int) -> bytes:
        return self.frames[min(index, len(self.frames) - 1)]

    def start(self) -> LiveCamera:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
