"""Face pre-processing: the one implementation of crop geometry, resize, colour order and normalisation.

Training caches its chips with :func:`crop_face`, the exporter calibrates on them, ``footfall evaluate``
and the edge agent crop live detections with it, and every model bundle records the :class:`FaceCropSpec`
it was trained with, so a chip looks the same wherever it is made.

Geometry: a square centred on the detector box (optionally shifted down by ``center_shift_y`` of the box
height), whose side is the box's larger side times ``1 + 2 * margin``, rotated so the eyes are level when
landmarks are given and ``align`` is set. Pixels outside the frame repeat the border (a face at the edge
of the frame still yields a chip). One affine warp does crop, rotation and resize together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# CenterFace's five landmarks, in its order.
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)

# Normalisation constants per channel: (value − mean) / std. A zero, negative or non-finite one would hand the
# classifier infinite, NaN or inverted inputs and answers that mean nothing, with no error anywhere.
ChannelMean = Annotated[float, Field(ge=-1.0, le=2.0, allow_inf_nan=False)]
ChannelStd = Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)]


class FaceCropSpec(BaseModel):
    """How a face chip is cut from a frame and turned into the classifier's input tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(default=64, ge=16, le=256, description="Chip side in pixels (input is size×size).")
    margin: float = Field(default=0.1, ge=-0.2, le=1.0, description="Added on each side, × box side.")
    center_shift_y: float = Field(default=0.0, ge=-0.5, le=0.5, description="Shift down, × box height.")
    align: bool = Field(default=True, description="Rotate so the eyes are level (needs landmarks).")
    colour_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[ChannelMean, ChannelMean, ChannelMean] = Field(
        default=(0.5, 0.5, 0.5), description="Subtracted per channel from pixel values scaled to 0-1."
    )
    std: tuple[ChannelStd, ChannelStd, ChannelStd] = Field(
        default=(0.5, 0.5, 0.5), description="Divides each channel after the mean (positive)."
    )


def _crop_transform(box: Sequence[float], spec: FaceCropSpec, landmarks: np.ndarray | None) -> np.ndarray:
    """2×3 affine matrix mapping frame pixels onto the chip."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx = (x1 + x2) / 2.0
    cy = (y1 + y2) / 2.0 + spec.center_shift_y * height
    side = max(width, height) * (1.0 + 2.0 * spec.margin)
    angle = 0.0
    if spec.align and landmarks is not None and len(landmarks) >= 2:
        (lx, ly), (rx, ry) = landmarks[LEFT_EYE][:2], landmarks[RIGHT_EYE][:2]
        if rx < lx:  # eyes reported in the other order: measure the angle left to right all the same
            (lx, ly), (rx, ry) = (rx, ry), (lx, ly)
        angle = float(np.arctan2(ry - ly, rx - lx))
        # A detector can swap or misplace eyes on profile faces; never turn a face more than 45°.
        angle = float(np.clip(angle, -np.pi / 4, np.pi / 4))
    scale = spec.size / side
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    half = spec.size / 2.0
    # Rotate by -angle about the crop centre, scale, then move the centre to the chip centre.
    return np.array(
        [[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy]],
        dtype=np.float64,
    )


def crop_face(
    frame_bgr: np.ndarray,
    box: Sequence[float],
    spec: FaceCropSpec,
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Cuts one face chip (``size×size×3`` uint8, in ``spec.colour_order``) from a BGR frame.

    ``box`` is ``(x1, y1, x2, y2)`` in frame pixels; ``landmarks`` is an optional ``(5, 2)`` array in the
    detector's order, used for alignment.
    """
    import cv2

    if frame_bgr.ndim == 2:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    matrix = _crop_transform(box, spec, landmarks)
    # Area interpolation when shrinking a lot keeps small text-like detail from aliasing into noise.
    shrink = spec.size / max(box[2] - box[0], box[3] - box[1], 1.0)
    flags = cv2.INTER_AREA if shrink < 0.5 else cv2.INTER_LINEAR
    chip = cv2.warpAffine(frame_bgr, matrix, (spec.size, spec.size), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    if spec.colour_order == "RGB":
        chip = chip[:, :, ::-1]
    return np.ascontiguousarray(chip)


def whole_image_box(image: np.ndarray) -> tuple[float, float, float, float]:
    """The box used when no face is found: the whole image (evaluation keeps hard cases this way)."""
    height, width = image.shape[:2]
    return (0.0, 0.0, float(width), float(height))


def normalise(chips: np.ndarray | Sequence[np.ndarray], spec: FaceCropSpec) -> np.ndarray:
    """Chips (``N×H×W×3`` uint8, already in ``spec.colour_order``) → float32 ``N×3×H×W`` model input."""
    batch = np.asarray(chips if isinstance(chips, np.ndarray) else np.stack(chips))
    if batch.ndim == 3:
        batch = batch[None]
    if batch.shape[1:] != (spec.size, spec.size, 3):
        raise ValueError(f"chips must be N×{spec.size}×{spec.size}×3, got {batch.shape}")
    mean = np.asarray(spec.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(spec.std, dtype=np.float32) * 255.0)
    tensor = (batch.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
