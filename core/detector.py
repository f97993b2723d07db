"""Face detection with a CenterFace bundle on onnxruntime (used by the edge and by ``footfall evaluate``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from footfall.core.bundle import Bundle, BundleError, load_bundle, open_session


@dataclass(frozen=True, slots=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in frame pixels, score, five landmarks ``(5, 2)``."""

    box: tuple[float, float, float, float]
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
    mapped back to the original frame.
    """

    def __init__(self, bundle: Bundle | str | Path, *, input_width: int | None = None, threads: int | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        contract = self.bundle.manifest.detector
        if contract is None:
            raise BundleError(f"{self.bundle.path}: not a face-detection bundle")
        self.contract = contract
        self.input_width = input_width
        self.session = open_session(self.bundle, threads=threads)
        self._input_name = self.session.get_inputs()[0].name

    def _input_size(self, width: int, height: int) -> tuple[int, int, float, float]:
        scale = 1.0
        if self.input_width and width > self.input_width:
            scale = self.input_width / width
        stride = self.contract.stride
        new_w = int(np.ceil(width * scale / stride) * stride)
        new_h = int(np.ceil(height * scale / stride) * stride)
        return new_w, new_h, new_w / width, new_h / height

    def __call__(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        import cv2

        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        height, width = frame_bgr.shape[:2]
        new_w, new_h, scale_x, scale_y = self._input_size(width, height)
        resized = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if self.contract.colour_order == "RGB":
            resized = resized[:, :, ::-1]
        blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)
        heatmap, scale, offset, landmarks = self.session.run(None, {self._input_name: blob})
        return self._decode(
            heatmap[0, 0], scale[0], offset[0], landmarks[0], (new_w, new_h), (scale_x, scale_y),
            self.contract.score_threshold if threshold is None else threshold,
        )

    def _decode(
        self,
        heatmap: np.ndarray,
        scale: np.ndarray,
        offset: np.ndarray,
        landmarks: np.ndarray,
        size: tuple[int, int],
        frame_scale: tuple[float, float],
        threshold: float,
    ) -> list[Detection]:
        rows, cols = np.nonzero(heatmap > threshold)
        if rows.size == 0:
            return []
        # CenterFace predicts on a 4× downsampled grid: box size is exp(scale) * 4 around the offset centre.
        box_h = np.exp(scale[0, rows, cols]) * 4.0
        box_w = np.exp(scale[1, rows, cols]) * 4.0
        centre_y = (rows + offset[0, rows, cols] + 0.5) * 4.0
        centre_x = (cols + offset[1, rows, cols] + 0.5) * 4.0
        x1 = np.clip(centre_x - box_w / 2, 0, size[0])
        y1 = np.clip(centre_y - box_h / 2, 0, size[1])
        x2 = np.clip(x1 + box_w, 0, size[0])
        y2 = np.clip(y1 + box_h, 0, size[1])
        boxes = np.stack([x1, y1, x2, y2], axis=1)
        scores = heatmap[rows, cols]
        # Landmarks are offsets from the box's top-left corner, in units of the box size: (y, x) pairs.
        lm_y = landmarks[0::2, rows, cols].T * box_h[:, None] + y1[:, None]
        lm_x = landmarks[1::2, rows, cols].T * box_w[:, None] + x1[:, None]
        keep = nms(boxes, scores, self.contract.nms_iou)
        sx, sy = frame_scale
        detections = []
        for i in keep:
            bx1, by1, bx2, by2 = boxes[i]
            points = np.stack([lm_x[i] / sx, lm_y[i] / sy], axis=1).astype(np.float32)
            detections.append(
                Detection((float(bx1 / sx), float(by1 / sy), float(bx2 / sx), float(by2 / sy)), float(scores[i]), points)
            )
        return detections
