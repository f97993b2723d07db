"""Face chips made the way the edge makes them, cached once per dataset.

The face detector runs over every image once (boxes and landmarks cached per dataset and detector);
chips are then cut with :func:`footfall.core.preprocess.crop_face` for a given :class:`FaceCropSpec`
(cached per spec, as a memory-mapped ``N×S×S×3`` uint8 array), so epochs never decode a JPEG and
trying another crop geometry costs one pass of cropping, not of detection.

Where the detector finds no face the whole image is the box (as ``footfall evaluate`` does); such
images are counted and reported. Where it finds several, the largest, most central one is taken.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.core.logs import log_event
from footfall.core.preprocess import FaceCropSpec, crop_face, whole_image_box
from footfall.models.datasets import FaceRecord, ImageSource

logger = logging.getLogger("footfall.models.chips")


def pick_face(detections: Sequence, image_shape: tuple[int, ...]):
    """The detection most likely to be the portrait's subject: large and near the image centre."""
    if not detections:
        return None
    height, width = image_shape[:2]
    cx, cy, half_diag = width / 2.0, height / 2.0, 0.5 * float(np.hypot(width, height))

    def weight(det) -> float:
        x1, y1, x2, y2 = det.box
        distance = float(np.hypot((x1 + x2) / 2 - cx, (y1 + y2) / 2 - cy)) / max(half_diag, 1.0)
        return (x2 - x1) * (y2 - y1) * max(1.0 - distance, 0.05)

    return max(detections, key=weight)


@dataclass
class FaceBoxes:
    """Per image: the chosen box, its landmarks (NaN when none), the number of faces found, readable."""

    boxes: np.ndarray  # N×4 float32
    landmarks: np.ndarray  # N×5×2 float32, NaN where no face was found
    faces_found: np.ndarray  # N int16: how many faces the detector reported
    readable: np.ndarray  # N bool: the image decoded

    @property
    def no_face(self) -> np.ndarray:
        return self.readable & (self.faces_found == 0)

    def summary(self) -> dict[str, int]:
        return {
            "images": len(self.boxes),
            "unreadable": int((~self.readable).sum()),
            "no_face": int(self.no_face.sum()),
            "several_faces": int((self.faces_found > 1).sum()),
        }

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            boxes=self.boxes,
            landmarks=self.landmarks,
            faces_found=self.faces_found,
            readable=self.readable,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FaceBoxes:
        with np.load(path) as data:
            return cls(data["boxes"], data["landmarks"], data["faces_found"], data["readable"])


def detect_boxes(source: ImageSource, records: Sequence[FaceRecord], detector, progress: bool = True) -> FaceBoxes:
    """Runs the detector over every image once."""
    from tqdm import tqdm

    count = len(records)
    boxes = np.zeros((count, 4), np.float32)
    landmarks = np.full((count, 5, 2), np.nan, np.float32)
    faces_found = np.zeros(count, np.int16)
    readable = np.zeros(count, bool)
    for index, record in enumerate(tqdm(records, desc=f"detect {source.name}", disable=not progress, unit="img")):
        image = source.read_bgr(record.path)
        if image is None:
            continue
        readable[index] = True
        detections = detector(image)
        faces_found[index] = min(len(detections), 32767)
        best = pick_face(detections, image.shape)
        if best is None:
            boxes[index] = whole_image_box(image)
        else:
            boxes[index] = best.box
            landmarks[index] = best.landmarks
    return FaceBoxes(boxes, landmarks, faces_found, readable)


def cut_chips(
    source: ImageSource,
    records: Sequence[FaceRecord],
    faces: FaceBoxes,
    spec: FaceCropSpec,
    out: np.ndarray,
    progress: bool = True,
) -> None:
    """Fills ``out`` (N×S×S×3 uint8) with chips cut by the shared pre-processing."""
    from tqdm import tqdm

    for index, record in enumerate(tqdm(records, desc=f"chips {source.name}", disable=not progress, unit="img")):
        if not faces.readable[index]:
            out[index] = 0
            continue
        image = source.read_bgr(record.path)
        marks = faces.landmarks[index]
        out[index] = crop_face(image, faces.boxes[index], spec, None if np.isnan(marks).any() else marks)


def spec_key(spec: FaceCropSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12]


def records_key(records: Sequence[FaceRecord]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(record.path.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:12]


def detector_key(bundle_dir: Path) -> str:
    """Identifies what the detector computes (its graph and decoding settings), not when it was packed."""
    from footfall.core.bundle import load_bundle

    manifest = load_bundle(bundle_dir, verify_hashes=False).manifest
    model_sha = manifest.files[manifest.model_file].sha256
    contract = manifest.detector.model_dump_json() if manifest.detector else ""
    return hashlib.sha256((model_sha + contract).encode()).hexdigest()[:12]


class ChipCache:
    """Per dataset folder: ``faces-<detector>.npz`` and ``chips-<detector>-<spec>.npy``."""

    def __init__(
        self,
        cache_dir: str | Path,
        dataset: str,
        source: ImageSource,
        records: Sequence[FaceRecord],
        detector_bundle: str | Path,
    ):
        self.source = source
        self.records = list(records)
        self.detector_bundle = Path(detector_bundle)
        self.folder = Path(cache_dir) / f"{dataset}-{records_key(self.records)}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.detector_id = detector_key(self.detector_bundle)
        self.faces_path = self.folder / f"faces-{self.detector_id}.npz"

    def faces(self, progress: bool = True) -> FaceBoxes:
        if self.faces_path.is_file():
            return FaceBoxes.load(self.faces_path)
        from footfall.core.detector import FaceDetector

        detector = FaceDetector(self.detector_bundle)
        faces = detect_boxes(self.source, self.records, detector, progress)
        faces.save(self.faces_path)
        log_event(logger, logging.INFO, "faces detected", dataset=self.folder.name, **faces.summary())
        return faces

    def chips(self, spec: FaceCropSpec, progress: bool = True) -> np.ndarray:
        """The chips for ``spec``, memory-mapped read-only (built on first use)."""
        stem = f"chips-{self.detector_id}-{spec_key(spec)}"
        path = self.folder / f"{stem}.npy"
        if not path.is_file():
            faces = self.faces(progress)
            tmp = path.with_name(path.name + ".tmp.npy")
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.uint8, shape=(len(self.records), spec.size, spec.size, 3)
            )
            cut_chips(self.source, self.records, faces, spec, out, progress)
            out.flush()
            del out
            tmp.replace(path)
            (self.folder / f"{stem}.json").write_text(spec.model_dump_json(indent=2))
        return np.load(path, mmap_mode="r")

    def report(self) -> dict[str, int]:
        return self.faces(progress=False).summary()


def dataset_summary(name: str, faces: FaceBoxes) -> str:
    return f"{name}: " + json.dumps(faces.summary())
