"""Face detection with a CenterFace bundle on onnxruntime (used by the edge and by ``footfall evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from footfall.core.bundle import Bundle, BundleError, load_bundle
from footfall.core.serving import open_model

_Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in frame pixels, score, five landmarks ``(5, 2)``."""

    box: _Box
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        xx1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class FaceDetector:
    """Runs a face-detection bundle on BGR frames; returns :class:`Detection` in frame pixels.

    ``input_width`` downscales wide frames before detection (the cost grows with pixels); boxes are
    mapped back to the original frame. ``reference`` runs the bundle's FP32 graph (parity runs);
    ``self_check`` runs the bundle's parity probe first and serves FP32 if INT8 strays on this CPU (the
    edge), and :attr:`serving` says which graph runs.
    """

    def __init__(
        self,
        bundle: Bundle | str | Path,
        *,
        input_width: int | None = None,
        threads: int | None = None,
        reference: bool = False,
        self_check: bool = False,
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        contract = self.bundle.manifest.detector
        if contract is None:
            raise BundleError(f"{self.bundle.path}: not a face-detection bundle")
        self.contract = contract
        self.input_width = input_width
        self.session, self.serving = open_model(
            self.bundle, reference=reference, self_check=self_check, threads=threads
        )
        self._input_name = self.session.get_inputs()[0].name

    def _input_size(self, width: int, height: int) -> tuple[int, int, float]:
        """Size the frame is resized to (before padding to the stride), and that scale."""
        scale = 1.0
        if self.input_width and width > self.input_width:
            scale = self.input_width / width
        return max(1, round(width * scale)), max(1, round(height * scale)), scale

    def prepare(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The network input for one frame (1×3×H×W float32, raw 0-255) and the frame → input scale.

        The frame is scaled (keeping its aspect ratio) and padded with black at the right and bottom to a
        multiple of the stride, rather than stretched: the network sees faces in their true proportions.
        """
        import cv2

        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        height, width = frame_bgr.shape[:2]
        new_w, new_h, scale = self._input_size(width, height)
        image = frame_bgr
        if (new_w, new_h) != (width, height):
            shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(frame_bgr, (new_w, new_h), interpolation=shrink)
        stride = self.contract.stride
        pad_w, pad_h = -new_w % stride, -new_h % stride
        if pad_w or pad_h:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        if self.contract.colour_order == "RGB":
            image = image[:, :, ::-1]
        blob = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        return blob, scale

    def __call__(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        blob, scale = self.prepare(frame_bgr)
        heatmap, sizes, offset, landmarks = self.session.run(None, {self._input_name: blob})
        height, width = frame_bgr.shape[:2]
        return self._decode(
            heatmap[0, 0],
            sizes[0],
            offset[0],
            landmarks[0],
            (width, height),
            scale,
            self.contract.score_threshold if threshold is None else threshold,
        )

    def _decode(
        self,
        heatmap: np.ndarray,
        sizes: np.ndarray,
        offset: np.ndarray,
        landmarks: np.ndarray,
        frame_size: tuple[int, int],
        scale: float,
        threshold: float,
    ) -> list[Detection]:
        rows, cols = np.nonzero(heatmap > threshold)
        if rows.size == 0:
            return []
        # CenterFace predicts on a 4× downsampled grid: box size is exp(size) * 4 around the offset centre.
        box_h = np.exp(sizes[0, rows, cols]) * 4.0
        box_w = np.exp(sizes[1, rows, cols]) * 4.0
        centre_y = (rows + offset[0, rows, cols] + 0.5) * 4.0
        centre_x = (cols + offset[1, rows, cols] + 0.5) * 4.0
        top, left = centre_y - box_h / 2, centre_x - box_w / 2
        # Landmarks are (y, x) pairs relative to the box's unclipped top-left corner, in box units (checked
        # on faces cut by the frame edge: this matches the same faces seen whole better than clipped).
        lm_y = landmarks[0::2, rows, cols].T * box_h[:, None] + top[:, None]
        lm_x = landmarks[1::2, rows, cols].T * box_w[:, None] + left[:, None]
        # Back to frame pixels; the padding lies right and bottom, so only the scale is undone.
        width, height = frame_size
        boxes = np.stack(
            [
                np.clip(left / scale, 0, width),
                np.clip(top / scale, 0, height),
                np.clip((left + box_w) / scale, 0, width),
                np.clip((top + box_h) / scale, 0, height),
            ],
            axis=1,
        )
        points = np.stack([lm_x / scale, lm_y / scale], axis=2).astype(np.float32)
        scores = heatmap[rows, cols]
        keep = nms(boxes, scores, self.contract.nms_iou)
        return [Detection(cast(_Box, tuple(float(v) for v in boxes[i])), float(scores[i]), points[i]) for i in keep]
