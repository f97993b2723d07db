"""What the capture tells logs and the published status about a camera's source: never its secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from footfall.edge.capture import CameraCapture, describe_source
from footfall.edge.config import CameraConfig

from footfall.broker import free_port
from tests.edge.conftest import SilentStream
from tests.waiting import wait_until


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        # FFmpeg ends the user information at the last '@': a password may hold one.
        ("rtsp://admin:Sup3r@Secret@10.0.0.9:554/stream", "rtsp://admin:***@10.0.0.9:554/stream"),
        ("rtsp://admin@10.0.0.9/live", "rtsp://admin:***@10.0.0.9/live"),
        ("http://10.0.0.1/cgi?user=admin&pwd=secret&ch=1", "http://10.0.0.1/cgi?user=admin&pwd=***&ch=1"),
        (  # Dahua's form: the password is a path parameter
            "rtsp://10.0.0.5:554/user=admin&password=abc@x&channel=1&stream=0.sdp",
            "rtsp://10.0.0.5:554/user=admin&password=***&channel=1&stream=0.sdp",
        ),
        ("rtsp://u:p@h/x?token=abc#frag", "rtsp://u:***@h/x?token=***#frag"),
        ("http://h/snap.jpg?Authorization=Basic%20YWJj&x=1", "http://h/snap.jpg?Authorization=***&x=1"),
        ("rtsp://10.0.0.9/live?channel=2", "rtsp://10.0.0.9/live?channel=2"),
        ("/videos/mall.mp4", "/videos/mall.mp4"),
        (0, "USB camera 0"),
    ],
)
def test_a_sources_password_is_masked(source: str | int, shown: str) -> None:
    assert describe_source(source) == shown


def test_an_unreachable_stream_is_reported_without_its_password(caplog: pytest.LogCaptureFixture) -> None:
    """The error goes into the log and into the retained status on the broker, which more people read than the
    box's config."""
    caplog.set_level(logging.WARNING, logger="footfall.edge.capture")
    source = f"rtsp://admin:Sup3r@Secret@127.0.0.1:{free_port()}/stream?pwd=hunter2"
    capture = CameraCapture(CameraConfig(id="door", source=source)).start()
    try:
        wait_until(lambda: capture.error is not None, 60)
    finally:
        capture.stop()
    said = [capture.error or "", *(record.getMessage() + str(vars(record)) for record in caplog.records)]
    assert any("127.0.0.1" in text for text in said)
    assert not any("Sup3r" in text or "Secret" in text or "hunter2" in text for text in said)


def test_a_usb_index_past_the_devices_is_refused_by_the_config_and_survived_by_the_capture() -> None:
    """An index OpenCV cannot take raised cv2.error in the capture thread, which died: the camera showed
    'connecting' for ever with no error (and `footfall doctor` a KeyError)."""
    from footfall.edge.capture import open_capture
    from footfall.edge.config import ConfigError, parse_config

    for source in ("256", "99999999999999999999999", "-1"):
        with pytest.raises(ConfigError, match=r"cameras\[0\]\.source: "):
            parse_config(f"agent_id: a\nsite_id: b\ncameras: [{{id: c, source: {source}}}]\n", "a.yaml")
    assert parse_config("agent_id: a\nsite_id: b\ncameras: [{id: c, source: '7'}]\n").cameras[0].source == 7
    assert open_capture(99999999999999999999999) is None


def test_a_stream_that_never_answers_keeps_its_error_while_the_capture_retries(
    monkeypatch: pytest.MonkeyPatch, silent_stream: SilentStream
) -> None:
    """A dead RTSP camera showed 'connecting' with no error text: each retry cleared the last reason while the
    open waited for its timeout. It keeps saying why now, and that the camera did not answer in time."""
    from footfall.edge import capture as capture_module

    monkeypatch.setattr(capture_module, "OPEN_TIMEOUT_MS", 1000)
    source = silent_stream.url
    capture = CameraCapture(CameraConfig(id="door", source=source), max_backoff=1.0).start()
    try:
        wait_until(lambda: capture.error is not None, 30)
        assert capture.error == f"{source}: no answer within 1 s", capture.error
        wait_until(lambda: capture.state == "connecting" and len(silent_stream.held) >= 2, 30)  # retrying
        assert capture.error == f"{source}: no answer within 1 s"
    finally:
        capture.stop()


class _Header:
    """What file_fps reads of a cv2.VideoCapture: the header's frame rate."""

    def __init__(self, fps: float):
        self.fps = fps

    def get(self, prop: int) -> float:
        return self.fps


@pytest.mark.parametrize("header", [0.0, float("nan"), 1e6, -1.0])
def test_an_absurd_header_frame_rate_is_named_in_a_warning(caplog: pytest.LogCaptureFixture, header: float) -> None:
    """A header frame rate of 0, NaN or a million was silently read as 25 fps: every time in the file's counts was
    off by that factor, without a word."""
    from footfall.edge.capture import DEFAULT_FILE_FPS, file_fps

    caplog.set_level(logging.WARNING, logger="footfall.edge.capture")
    assert file_fps(_Header(header), "/videos/odd.mp4") == DEFAULT_FILE_FPS
    [record] = [r for r in caplog.records if r.name == "footfall.edge.capture"]
    fields = vars(record)["fields"]
    assert record.levelno == logging.WARNING and "frame rate" in record.getMessage()
    assert fields["video"] == "/videos/odd.mp4" and fields["assumed_fps"] == DEFAULT_FILE_FPS
    assert str(fields["header_fps"]) == str(header)
    caplog.clear()
    assert file_fps(_Header(12.5), "/videos/fine.mp4") == 12.5
    assert not caplog.records


def test_a_video_file_with_an_absurd_frame_rate_is_read_at_the_assumed_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from footfall.edge.capture import DEFAULT_FILE_FPS, VideoFile

    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 1e6, (64, 48))  # reads back as 600
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    caplog.set_level(logging.WARNING, logger="footfall.edge.capture")
    video = VideoFile(clip)
    video.close()
    assert video.fps == DEFAULT_FILE_FPS
    assert [vars(r)["fields"]["video"] for r in caplog.records] == [str(clip)]
