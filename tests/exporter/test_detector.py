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


def test_the_shipped_detector_keeps_its_stem_in_fp32_as_its_report_says() -> None:
    """The exporter keeps the stem's convolutions out of INT8 (their long-tailed activations lost the most);
    the shipped graph must have exactly the FP32 nodes its report names, and no weight of theirs quantized."""
    import json

    import onnx
    from footfall.exporter.detector_export import FLOAT_STEM_CONVS, stem_outputs

    quantization = json.loads((DEFAULT_DETECTOR_BUNDLE / "parity.json").read_text())["quantization"]
    reference = onnx.load(str(DEFAULT_DETECTOR_BUNDLE / "model-fp32.onnx"))
    assert quantization["float_nodes"] == list(stem_outputs(reference)) and len(quantization["float_nodes"]) == 3
    assert FLOAT_STEM_CONVS == 3
    model = onnx.load(str(DEFAULT_DETECTOR_BUNDLE / "model.onnx"))
    produced_by = {out: node for node in model.graph.node for out in node.output}
    floats = {init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    for name in quantization["float_nodes"]:
        conv = produced_by[name]
        assert conv.op_type == "Conv"
        assert conv.input[1] in floats, f"{name}: weight {conv.input[1]} is not an FP32 initializer"
    # Every other convolution reads a dequantized int8 weight.
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    quantized = [n for n in convs if n.output[0] not in quantization["float_nodes"]]
    assert len(quantized) == len(convs) - 3
    assert all(produced_by[n.input[1]].op_type == "DequantizeLinear" for n in quantized)


def test_calibration_rows_never_repeat_a_validation_or_test_image(data_dir: Path) -> None:
    import zipfile

    from footfall.exporter.datasets import unseen_elsewhere

    with zipfile.ZipFile(data_dir / "wiki-144.zip") as archive:
        members = {info.filename: (info.CRC, info.file_size) for info in archive.infolist()}
    train = read_rows(data_dir, "wiki-144", "train")
    elsewhere = {members[row.path] for split in ("val", "test") for row in read_rows(data_dir, "wiki-144", split)}
    kept = unseen_elsewhere(data_dir, train)
    assert not {members[row.path] for row in kept} & elsewhere
    assert len(train) - len(kept) == sum(members[row.path] in elsewhere for row in train) >= 1
