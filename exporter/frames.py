"""Camera-like test frames made of real portraits, for detector calibration and parity checks.

No store-camera footage can ship with the project, so a frame is composed from real photographs: a
strongly blurred portrait fills the background and several portraits of one split are pasted at sizes a
mall camera sees (faces of roughly 20 to 180 pixels on a 1280×720 frame). Frames are built in memory
only and never written out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from footfall.exporter.datasets import iter_images, read_rows, spread, unseen_elsewhere

FRAME_SIZE = (1280, 720)


def mosaic_frames(
    data_dir: Path, split: str, count: int, *, seed: int = 0, faces_per_frame: tuple[int, int] = (4, 10)
) -> Iterator[np.ndarray]:
    """``count`` BGR frames of 1280×720 built from wiki portraits of ``split`` (deterministic per seed); frames
    of the training split leave out the images that also appear in the validation or test split."""
    import cv2

    rng = np.random.default_rng(seed)
    rows = read_rows(data_dir, "wiki-144", split)
    if split == "train":
        rows = unseen_elsewhere(data_dir, rows)
    rows = spread(rows, count * (faces_per_frame[1] + 1))
    images = (image for _, image in iter_images(data_dir, rows))
    width, height = FRAME_SIZE
    for _ in range(count):
        background = next(images, None)
        if background is None:
            return
        frame = cv2.GaussianBlur(cv2.resize(background, FRAME_SIZE), (0, 0), 25)
        occupied = np.zeros((height, width), dtype=bool)
        for _ in range(int(rng.integers(faces_per_frame[0], faces_per_frame[1] + 1))):
            portrait = next(images, None)
            if portrait is None:
                break
            # Portrait crops show the face at about half their width: this targets 20-180 px faces.
            target_w = int(np.exp(rng.uniform(np.log(40), np.log(360))))
            scale = target_w / portrait.shape[1]
            target_h = max(1, int(portrait.shape[0] * scale))
            if target_h >= height or target_w >= width:
                continue
            for _attempt in range(10):
                x = int(rng.integers(0, width - target_w))
                y = int(rng.integers(0, height - target_h))
                if not occupied[y : y + target_h, x : x + target_w].any():
                    resized = cv2.resize(portrait, (target_w, target_h), interpolation=cv2.INTER_AREA)
                    frame[y : y + target_h, x : x + target_w] = resized
                    occupied[y : y + target_h, x : x + target_w] = True
                    break
        yield frame
