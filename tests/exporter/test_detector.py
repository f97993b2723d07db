"""The shipped CenterFace bundle finds real faces, with boxes and landmarks in frame coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from footfall.core.detector import FaceDetector  # noqa: E402
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE  # noqa: E402
from footfall.exporter.datasets import iter_images, read_rows, spread  # noqa: E402


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(DEFAULT_DETECTOR_BUNDLE, threads=2)


def val_images(data_dir: Path, dataset: str, count: int) -> list[np.ndarray]:
    return [image for _, image in iter_images(data_dir, spread(read_rows(data_dir, dataset, "val"), count))]


def plausible(face, image: np.ndarray) -> bool:
    """A frontal portrait's face: box around the centre, eyes above nose above mouth, left eye left."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.box
    (lx, ly), (rx, ry), (_, ny), (mlx, mly), (mrx, mry) = face.landmarks
    inside = all(x1 - 2 <= x <= x2 + 2 and y1 - 2 <= y <= y2 + 2 for x, y in face.landmarks)
    centred = x1 < width / 2 < x2 and y1 < height / 2 < y2
    return inside and centred and lx < rx and max(ly, ry) < ny < min(mly, mry) and mlx < mrx


@pytest.mark.parametrize("dataset", ["utkface-112", "wiki-144"])
def test_finds_the_face_in_real_portraits(data_dir: Path, detector: FaceDetector, dataset: str) -> None:
    images = val_images(data_dir, dataset, 60)
    found = [max(detector(image), key=lambda d: d.score, default=None) for image in images]
    assert sum(face is not None for face in found) >= 0.95 * len(images)
    geometry = [plausible(face, image) for face, image in zip(found, images, strict=True) if face is not None]
    assert np.mean(geometry) >= 0.9, f"only {np.mean(geometry):.0%} of faces have plausible box and landmarks"


def test_boxes_are_in_frame_pixels_whatever_the_input_scale(data_dir: Path) -> None:
    """The same face on a large frame, detected at full size and downscaled, lands on the same pixels.

    This checks the coordinate mapping (padding, scaling back), so it runs the FP32 reference graph: the INT8
    graph's box noise is the export's detection parity to judge (IoU ≥ 0.5), not this 10 % tolerance."""
    detector = FaceDetector(DEFAULT_DETECTOR_BUNDLE, threads=2, reference=True)
    image = val_images(data_dir, "wiki-144", 1)[0]
    frame = np.zeros((720, 1280, 3), np.uint8)
    face = cv2.resize(image, None, fx=2.5, fy=2.5)
    frame[200 : 200 + face.shape[0], 700 : 700 + face.shape[1]] = face
    full = max(detector(frame), key=lambda d: d.score)
    small = max(FaceDetector(detector.bundle, input_width=640, threads=2, reference=True)(frame), key=lambda d: d.score)
    direct = max(detector(image), key=lambda d: d.score)
    expected = np.array(direct.box) * 2.5 + [700, 200, 700, 200]
    tolerance = 0.1 * direct.width * 2.5
    assert np.abs(np.array(full.box) - expected).max() < tolerance
    assert np.abs(np.array(small.box) - expected).max() < tolerance
    assert np.abs(full.landmarks - small.landmarks).max() < tolerance


def test_blank_and_odd_sized_frames(detector: FaceDetector) -> None:
    assert detector(np.zeros((360, 640, 3), np.uint8)) == []
    assert detector(np.full((101, 77), 128, np.uint8)) == []  # grey, not a multiple of the stride
