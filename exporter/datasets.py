"""The research face datasets as the exporter uses them: rows of one split, decoded lazily, never saved.

Reading is :mod:`footfall.models.datasets`' (one CSV/zip reader for the project); this module only picks
the rows the exporter needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.models.datasets import DatasetError, ImageSource, load_csv_manifest

DATASETS = ("utkface-112", "wiki-144")

__all__ = [
    "DATASETS",
    "DatasetError",
    "FaceRow",
    "iter_images",
    "missing_files",
    "read_rows",
    "spread",
    "unseen_elsewhere",
]


@dataclass(frozen=True, slots=True)
class FaceRow:
    dataset: str
    path: str  # member of the dataset's zip
    gender: str
    split: str | None
    age: float | None = None  # years, where the dataset gives it


def missing_files(data_dir: Path, datasets: tuple[str, ...] = DATASETS) -> list[str]:
    """The ``<dataset>.csv`` and ``<dataset>.zip`` files of ``datasets`` that ``data_dir`` lacks."""
    wanted = [f"{dataset}{suffix}" for dataset in datasets for suffix in (".csv", ".zip")]
    return [name for name in wanted if not (data_dir / name).is_file()]


def read_rows(data_dir: Path, dataset: str, split: str) -> list[FaceRow]:
    """The rows of ``split`` of ``<data_dir>/<dataset>.csv`` (images in ``<dataset>.zip``)."""
    if missing_files(data_dir, (dataset,)):
        raise DatasetError(f"{data_dir}: {dataset}.csv and {dataset}.zip are needed (see the data README)")
    records = load_csv_manifest(data_dir / f"{dataset}.csv")
    return [FaceRow(dataset, r.path, r.gender, r.split, r.age) for r in records if r.split == split]


def unseen_elsewhere(data_dir: Path, rows: list[FaceRow], others: tuple[str, ...] = ("val", "test")) -> list[FaceRow]:
    """``rows`` without those whose image is byte-identical to an image of the ``others`` splits.

    The datasets hold a few duplicate files under different names and splits (wiki-144: one training image is
    also a test image; utkface-112: 66), so training-split calibration drops them and never sees a test face.
    Identity is the zip member's CRC-32 and size, read from the archive's directory without decoding."""
    import zipfile

    kept: list[FaceRow] = []
    for dataset in dict.fromkeys(row.dataset for row in rows):
        with zipfile.ZipFile(data_dir / f"{dataset}.zip") as archive:
            members = {info.filename: (info.CRC, info.file_size) for info in archive.infolist()}
        elsewhere = {members.get(row.path) for split in others for row in read_rows(data_dir, dataset, split)}
        kept += [row for row in rows if row.dataset == dataset and members.get(row.path) not in elsewhere]
    return kept


def spread(rows: list[FaceRow], count: int | None) -> list[FaceRow]:
    """At most ``count`` rows taken evenly across the list (deterministic, covers the whole split)."""
    if count is None or count >= len(rows):
        return rows
    index = np.linspace(0, len(rows) - 1, count).round().astype(int)
    return [rows[i] for i in index]


def iter_images(data_dir: Path, rows: list[FaceRow]) -> Iterator[tuple[FaceRow, np.ndarray]]:
    """Each row with its decoded BGR image; an unreadable image is skipped, not fatal."""
    sources: dict[str, ImageSource] = {}
    try:
        for row in rows:
            source = sources.get(row.dataset)
            if source is None:
                source = sources[row.dataset] = ImageSource(data_dir / f"{row.dataset}.zip")
            image = source.read_bgr(row.path)
            if image is not None:
                yield row, image
    finally:
        for source in sources.values():
            source.close()
