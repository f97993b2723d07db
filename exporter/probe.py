"""Builds a bundle's parity probe: inputs cut from the bundled sample clip, the FP32 graph's outputs on
them, and the tolerance within which the shipped graph must stay on any CPU that serves it.

The clip (``edge/samples/mall-walkby.mp4``) is made of public-domain and CC0 photographs (see
``edge/samples/PROVENANCE.md``), so the probe carries no research-dataset face. The tolerance is twice the
INT8 error measured here, and never below a floor: a 7-bit INT8 graph gives the same integers on every CPU,
so a correct one lands near the exporter's figure, while int16 saturation moves a detector's face scores by
0.1 or more (measured on an emulated AVX2-only CPU; see the export report).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from footfall.core.cpu import describe_cpu
from footfall.core.detector import Detection, FaceDetector
from footfall.core.manifest import ClassifierContract, ParityProbe
from footfall.core.preprocess import FaceCropSpec, crop_face
from footfall.core.serving import probe_feed, probe_measure

PROBE_FILE = "probe.npz"
DETECTOR_WINDOWS = 4  # 192×192 windows around faces, from different walkers
DETECTOR_WINDOW = 192  # a multiple of the detector's stride
CLASSIFIER_CHIPS = 16
TOLERANCE_MARGIN = 2.0
TOLERANCE_FLOOR = {"heatmap": 0.03, "probabilities": 0.05}


def sample_clip() -> Path:
    import footfall.edge

    return Path(footfall.edge.__file__).resolve().parent / "samples" / "mall-walkby.mp4"


def clip_faces(detector: FaceDetector, every: int = 5) -> list[tuple[np.ndarray, Detection]]:
    """(frame, face) pairs from every ``every``-th frame of the sample clip, largest faces first."""
    import cv2

    capture = cv2.VideoCapture(str(sample_clip()))
    faces: list[tuple[np.ndarray, Detection]] = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                faces += [(frame, face) for face in detector(frame) if face.width >= 24]
            index += 1
    finally:
        capture.release()
    if not faces:
        raise RuntimeError(f"{sample_clip()}: the detector found no face to build a parity probe from")
    return sorted(faces, key=lambda pair: -pair[1].width)


def _spread(items: list, count: int) -> list:
    """``count`` items spread evenly over the list (all of them when it is shorter)."""
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def detector_probe_inputs(detector: FaceDetector) -> np.ndarray:
    """N×3×192×192 uint8 windows around faces of the clip, in the detector's colour order."""
    windows = []
    for frame, face in _spread(clip_faces(detector), DETECTOR_WINDOWS):
        height, width = frame.shape[:2]
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        x0 = int(np.clip(cx - DETECTOR_WINDOW / 2, 0, width - DETECTOR_WINDOW))
        y0 = int(np.clip(cy - DETECTOR_WINDOW / 2, 0, height - DETECTOR_WINDOW))
        window = frame[y0 : y0 + DETECTOR_WINDOW, x0 : x0 + DETECTOR_WINDOW]
        if detector.contract.colour_order == "RGB":
            window = window[:, :, ::-1]
        windows.append(window.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(windows), dtype=np.uint8)


def classifier_probe_inputs(detector: FaceDetector, spec: FaceCropSpec) -> np.ndarray:
    """N×S×S×3 uint8 chips cut from the clip's faces the way the edge cuts them."""
    faces = _spread(clip_faces(detector, every=3), CLASSIFIER_CHIPS)
    return np.stack([crop_face(frame, face.box, spec, face.landmarks) for frame, face in faces])


def build_probe(
    folder: Path,
    classifier: ClassifierContract | None,
    inputs: np.ndarray,
    reference_run: Callable[[np.ndarray], list[np.ndarray]],
    shipped_run: Callable[[np.ndarray], list[np.ndarray]],
) -> ParityProbe:
    """Writes ``probe.npz`` into ``folder`` and returns its manifest entry. ``classifier`` is the classifier
    contract (None for a detector); the two callables run the FP32 and the shipped graph on a batch."""
    feed = probe_feed(classifier, inputs)
    reference = probe_measure(classifier, reference_run(feed))
    shipped = probe_measure(classifier, shipped_run(feed))
    measure = "probabilities" if classifier is not None else "heatmap"
    error = float(np.abs(shipped - reference).max())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, inputs=inputs, reference=reference)
    (folder / PROBE_FILE).write_bytes(buffer.getvalue())
    return ParityProbe(
        file=PROBE_FILE,
        measure=measure,
        tolerance=round(max(TOLERANCE_FLOOR[measure], TOLERANCE_MARGIN * error), 4),
        error_at_export=round(error, 6),
        cpu_at_export=describe_cpu(),
    )


def quantization_lines(report: dict) -> list[str]:
    """The report's account of the INT8 format (and why), its no-saturation check and its parity probe."""
    quantization, probe = report.get("quantization"), report.get("probe")
    if not quantization:
        return []
    saturation = quantization["saturation"]
    lines = [
        f"INT8 format: {quantization['weight_format']}, {quantization['why']}. Largest |int8 weight| "
        f"{saturation['largest_abs_int8_weight']}, so the worst pair sum is {saturation['worst_int16_pair_sum']} "
        f"(int16 holds {saturation['int16_max']}): "
        + ("saturation-free on every CPU." if saturation["saturation_free"] else "**can saturate**."),
    ]
    if quantization.get("float_nodes"):
        lines.append(
            f"Kept in FP32 (outputs {', '.join(quantization['float_nodes'])}): {quantization['float_why']}; "
            "they hold no int8 weights."
        )
    if probe:
        lines.append(
            f"Parity probe ({probe['measure']}, inputs from the public-domain sample clip): INT8 error "
            f"{probe['error_at_export']:.4f} here, tolerance {probe['tolerance']:.4f} on the serving CPU."
        )
    return [*lines, ""]
