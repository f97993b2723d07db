"""``process_video`` end to end on a tiny synthetic clip: bright squares walk across a dark frame and a
stand-in detector finds them, so the real capture, tracker, counter, aggregator and messages run in a second
without a model or a dataset. What it checks: the camera's visitors are the people, each once, beside zone
passes that add up to more; an entrance line counts in and out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from footfall.core.detector import Detection, FaceDetector
from footfall.core.wire import AggregateMessage
from footfall.edge.config import AgentConfig, CameraConfig, LineConfig, ZoneConfig
from footfall.edge.offline import process_video
from footfall.edge.pipeline import Models

from tests.edge.conftest import damage_frames

cv2 = pytest.importorskip("cv2")

WIDTH, HEIGHT, FPS, SIZE = 320, 180, 15.0, 24


class BrightSquareDetector:
    """What the pipeline uses of a FaceDetector: each bright blob is a face, surely."""

    contract = SimpleNamespace(score_threshold=0.5)

    def __call__(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        mask = (frame_bgr[:, :, 1] > 128).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        found = []
        for x, y, w, h, area in stats[1:count]:
            if area >= 0.5 * SIZE * SIZE:
                found.append(Detection((float(x), float(y), float(x + w), float(y + h)), 0.95, np.zeros((5, 2))))
        return found


def write_clip(path: Path, walkers: list[tuple[float, float, float, int]], frames: int) -> None:
    """``walkers``: (start x, speed px/s, y, first frame); each walks until it leaves the frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    for index in range(frames):
        image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        for x0, speed, y, first in walkers:
            if index < first:
                continue
            x = int(x0 + speed * (index - first) / FPS)
            if SIZE // 2 <= x <= WIDTH - SIZE // 2:
                image[int(y) - SIZE // 2 : int(y) + SIZE // 2, x - SIZE // 2 : x + SIZE // 2] = 230
        writer.write(image)
    writer.release()


def test_process_video_counts_each_person_once_per_camera(tmp_path: Path) -> None:
    clip = tmp_path / "walkers.avi"
    # Two walk in from the left (through the door), one walks out to the left, staggered over 10 s.
    walkers = [(20, 80, 60, 0), (20, 80, 120, 45), (300, -80, 90, 70)]
    write_clip(clip, walkers, frames=150)
    camera = CameraConfig(
        id="cam1",
        source=str(clip),
        realtime=False,
        fps=FPS,
        zones=[
            ZoneConfig(id="west", polygon=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]),
            ZoneConfig(id="east", polygon=[(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]),
        ],
        lines=[
            LineConfig(id="mid", points=((0.5, 0.0), (0.5, 1.0))),
            LineConfig(id="door", points=((0.25, 0.0), (0.25, 1.0)), direction="right", entrance=True),
        ],
    )
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=10)
    models = Models(cast(FaceDetector, BrightSquareDetector()), None)
    aggregates: list[AggregateMessage] = []
    summary = process_video(clip, config, progress=False, models=models, start_time=0.0, aggregates=aggregates)

    assert summary["people"] == len(walkers)
    assert summary["camera_visitors"] == {"people": 3, "female": 0, "male": 0, "unknown": 3}
    assert summary["entrances"] == {"door": {"in": 2, "out": 1}}
    passes = {zone: counts["people"] for zone, counts in summary["zones"].items()}
    assert passes == {"west": 3, "east": 3, "mid": 3}  # 9 passes of 3 people: never added up to people
    by_measure = {m.measure for m in aggregates}
    assert by_measure == {"passes", "camera", "in", "out"}
    assert all(m.zone_id == "cam1" for m in aggregates if m.measure == "camera")
    assert all(m.dwell is None for m in aggregates if m.measure != "passes")


def test_a_video_that_ends_early_says_so_in_its_summary(tmp_path: Path) -> None:
    """Found by attack: the first third of a 120-frame AVI gave 'frames: 41', exit 0, and a summary that read like a
    whole video; only a log line said it ended early. The summary says it, for a script reading it."""
    clip = tmp_path / "walkers.avi"
    write_clip(clip, [(20, 80, 60, 0)], frames=120)
    config = AgentConfig(
        agent_id="box-test", site_id="lab", cameras=[CameraConfig(id="cam1", source=str(clip), realtime=False)]
    )
    models = Models(cast(FaceDetector, BrightSquareDetector()), None)
    whole = process_video(clip, config, progress=False, models=models, start_time=0.0)
    assert (whole["truncated"], whole["frames_expected"]) == (False, 120), whole
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 3])
    cut = process_video(clip, config, progress=False, models=models, start_time=0.0)
    assert (cut["truncated"], cut["frames_expected"]) == (True, 120) and cut["frames"] < 60, cut


def test_frames_that_do_not_decode_are_skipped_and_the_rest_of_the_video_is_read(tmp_path: Path) -> None:
    """Found by an adversarial review: one damaged packet of 280 ended a clip at frame 36 (people 0, 'truncated')
    though OpenCV decodes every frame after it. Now only the damaged frames are lost, and the others keep their
    times: the walker who enters after them is counted, and the video lasts as long as before."""
    clip = tmp_path / "walkers.avi"
    write_clip(clip, [(20, 80, 60, 0), (20, 80, 120, 50)], frames=120)
    damage_frames(clip, (40, 41, 42))
    config = AgentConfig(
        agent_id="box-test", site_id="lab", cameras=[CameraConfig(id="cam1", source=str(clip), realtime=False)]
    )
    models = Models(cast(FaceDetector, BrightSquareDetector()), None)
    summary = process_video(clip, config, progress=False, models=models, start_time=0.0)
    assert summary["people"] == 2, summary
    assert (summary["truncated"], summary["frames_undecodable"], summary["frames"]) == (False, 3, 117), summary
    assert summary["video_seconds"] == round(120 / FPS, 2)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{clip}", "--out", "{clip}/events.jsonl"], "cannot write --out"),  # found after the whole run
        (["{clip}", "--out", "{tmp}"], "cannot write --out"),
        (["{tmp}"], "is a folder, not a video file"),  # said 'video file not found'
        (["/dev/null"], "/dev/null: not a regular file (a device or a pipe), not a video file"),  # 'not found'
        # A stream's URL (Path collapses its '//'): said 'rtsp:/127.0.0.1:1/x: video file not found'.
        (["rtsp://127.0.0.1:1/x"], "rtsp://127.0.0.1:1/x: process reads video files; a camera's stream is the agent's"),
        (["{clip}", "--camera", "door"], "--camera door: cameras are named in a config"),  # silently ignored
        (["{clip}", "--start", "9999-12-31T23:59:59"], "--start 9999-12-31T23:59:59+00:00: must be between"),
        (["{clip}", "--start", "1969-12-31T21:00:00-02:00"], "must be between 1970-01-01 and 9000-01-01"),
    ],
)
def test_footfall_process_refuses_what_it_cannot_do_before_reading_the_video(
    tmp_path: Path, args: list[str], words: str
) -> None:
    import subprocess
    import sys

    clip = Path(__file__).resolve().parents[2] / "edge" / "samples" / "mall-walkby.mp4"
    argv = [a.format(clip=clip, tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "footfall", "process", *argv, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("start", [9_000 * 365.25 * 86_400.0, -1.0])
def test_a_start_time_out_of_range_is_refused_before_the_video_is_opened(tmp_path: Path, start: float) -> None:
    """--start 9999-12-31T23:59:59 decoded the whole video, then failed: 'year 10000 is out of range'."""
    from footfall.edge.config import ConfigError

    models = Models(cast(FaceDetector, BrightSquareDetector()), None)
    with pytest.raises(ConfigError, match=r"^--start .*: must be between 1970-01-01 and 9000-01-01"):
        process_video(tmp_path / "not-even-there.avi", progress=False, models=models, start_time=start)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (every write: no space left)")
def test_aggregates_that_cannot_be_written_at_the_end_keep_the_run_summary(tmp_path: Path) -> None:
    """--out passes the check before the run (it can be opened), then the disk is full when the aggregates are
    written: the whole video's summary was thrown away with a one-line error. It comes with the error now."""
    from footfall.edge.offline import AggregatesNotWritten

    clip = tmp_path / "walkers.avi"
    write_clip(clip, [(20, 80, 60, 0)], frames=60)
    camera = CameraConfig(id="cam1", source=str(clip), realtime=False, fps=FPS)
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=10)
    models = Models(cast(FaceDetector, BrightSquareDetector()), None)
    with pytest.raises(AggregatesNotWritten, match=r"^/dev/full: cannot write the aggregates \(No space") as failed:
        process_video(clip, config, progress=False, models=models, start_time=0.0, out=Path("/dev/full"))
    assert failed.value.summary["people"] == 1 and failed.value.summary["messages"] >= 1


def test_a_half_written_aggregates_file_is_removed(tmp_path: Path) -> None:
    from footfall.core.wire import AggregateMessage
    from footfall.edge.offline import write_aggregates

    class Unwritable(AggregateMessage):
        def model_dump(self, **_: object) -> dict[str, object]:  # the disk is full by the time the file exists
            raise OSError(28, "No space left on device")

    out = tmp_path / "events.jsonl"
    with pytest.raises(OSError, match="No space"):
        write_aggregates(out, "t", [cast(AggregateMessage, Unwritable.model_construct())])
    assert not out.exists()
