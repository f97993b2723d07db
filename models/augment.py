"""Training augmentation on uint8 face chips: what mall cameras do to faces.

Small shifts and scale changes (detector jitter), mirror, rotation, colour and exposure, blur, low
resolution (a 20-pixel face up-scaled to the chip size), JPEG artefacts and sensor noise. Works on
``N×S×S×3`` uint8 chips and returns uint8 chips, so the result goes through the shared
:func:`footfall.core.preprocess.normalise` exactly like an edge chip.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a recipe's numbers are finite (recipe._Model)

    flip: float = Field(0.5, ge=0, le=1)
    scale: tuple[float, float] = (0.9, 1.12)
    shift: float = Field(0.06, ge=0, le=0.5, description="× chip side, each axis")
    rotate_deg: float = Field(10.0, ge=0, le=45)
    brightness: float = Field(0.25, ge=0, le=1)
    contrast: float = Field(0.3, ge=0, le=1)
    saturation: float = Field(0.4, ge=0, le=1)
    grayscale: float = Field(0.1, ge=0, le=1)
    blur: float = Field(0.2, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.4, 1.3)
    low_res: float = Field(0.3, ge=0, le=1)
    low_res_side: tuple[int, int] = (14, 40)
    jpeg: float = Field(0.3, ge=0, le=1)
    jpeg_quality: tuple[int, int] = (30, 90)
    noise: float = Field(0.15, ge=0, le=1)
    noise_sigma: tuple[float, float] = (2.0, 8.0)


def augment_batch(chips: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    import cv2

    batch = np.array(chips, dtype=np.uint8, copy=True)
    count, size = batch.shape[0], batch.shape[1]
    centre = size / 2.0
    for i in range(count):
        chip = batch[i]
        if rng.random() < config.flip:
            chip = chip[:, ::-1]
        scale = rng.uniform(*config.scale)
        angle = rng.uniform(-config.rotate_deg, config.rotate_deg)
        matrix = cv2.getRotationMatrix2D((centre, centre), angle, scale)
        matrix[:, 2] += rng.uniform(-config.shift, config.shift, size=2) * size
        chip = cv2.warpAffine(
            np.ascontiguousarray(chip),
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if rng.random() < config.low_res:
            side = int(rng.integers(config.low_res_side[0], config.low_res_side[1] + 1))
            if side < size:
                small = cv2.resize(chip, (side, side), interpolation=cv2.INTER_AREA)
                chip = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        if rng.random() < config.blur:
            chip = cv2.GaussianBlur(chip, (0, 0), rng.uniform(*config.blur_sigma))
        batch[i] = chip
    # Colour and exposure: vectorised over the batch.
    work = batch.astype(np.float32)
    gray = work @ np.array([0.299, 0.587, 0.114], np.float32)
    saturation = 1.0 + rng.uniform(-config.saturation, config.saturation, (count, 1, 1, 1)).astype(np.float32)
    saturation[rng.random(count) < config.grayscale] = 0.0
    work = gray[..., None] + (work - gray[..., None]) * saturation
    contrast = 1.0 + rng.uniform(-config.contrast, config.contrast, (count, 1, 1, 1)).astype(np.float32)
    mean = work.mean(axis=(1, 2, 3), keepdims=True)
    work = (work - mean) * contrast + mean
    work *= 1.0 + rng.uniform(-config.brightness, config.brightness, (count, 1, 1, 1)).astype(np.float32)
    noisy = rng.random(count) < config.noise
    if noisy.any():
        sigma = rng.uniform(*config.noise_sigma, (int(noisy.sum()), 1, 1, 1)).astype(np.float32)
        work[noisy] += rng.standard_normal(work[noisy].shape, dtype=np.float32) * sigma
    batch = np.clip(work + 0.5, 0, 255).astype(np.uint8)
    for i in np.nonzero(rng.random(count) < config.jpeg)[0]:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", batch[i], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            batch[i] = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).reshape(size, size, 3)
    return batch
