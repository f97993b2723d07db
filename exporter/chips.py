"""Face chips for export: cut from dataset images through the edge's own path (detector, shared crop).

Calibration uses chips of the training split; parity uses the validation split. Images where the
detector finds no face are cropped whole, as ``footfall evaluate`` does, so no hard case drops out.
Chips live in memory only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.core.detector import FaceDetector
from footfall.core.preprocess import FaceCropSpec, crop_face, whole_image_box
from footfall.exporter.datasets import DATASETS, iter_images, read_rows, spread
from footfall.models.chips import pick_face


@dataclass
class ChipSet:
    chips: np.ndarray  # N×S×S×3 uint8, in the spec's colour order
    labels: np.ndarray  # N int64, index into the model's labels
    datasets: np.ndarray  # N str, which dataset each chip came from
    no_face: int  # images cropped whole because no face was found
    ages: np.ndarray  # N float years, NaN where the dataset gives none


def cut_chips(
    data_dir: Path,
    split: str,
    spec: FaceCropSpec,
    labels: list[str],
    detector: FaceDetector,
    *,
    per_dataset: int | None = None,
    progress: bool = True,
) -> ChipSet:
    """Chips of ``split`` from every dataset (at most ``per_dataset`` each, spread over the split)."""
    from tqdm import tqdm

    rows = [row for name in DATASETS for row in spread(read_rows(data_dir, name, split), per_dataset)]
    chips, targets, sources, ages, no_face = [], [], [], [], 0
    images = tqdm(iter_images(data_dir, rows), total=len(rows), desc=f"chips {split}", unit="img",
                  disable=not progress, mininterval=2)  # fmt: skip
    for row, image in images:
        if row.gender not in labels:
            continue
        face = pick_face(detector(image), image.shape)
        if face is None:
            no_face += 1
            chips.append(crop_face(image, whole_image_box(image), spec))
        else:
            chips.append(crop_face(image, face.box, spec, face.landmarks))
        targets.append(labels.index(row.gender))
        sources.append(row.dataset)
        ages.append(np.nan if row.age is None else float(row.age))
    if not chips:
        raise ValueError(f"{data_dir}: no labelled images in the {split!r} split")
    return ChipSet(
        np.stack(chips), np.asarray(targets, np.int64), np.asarray(sources), no_face, np.asarray(ages, float)
    )
