"""A teacher for distillation: dlib's ResNet face descriptor, computed once per training image and cached.

The descriptor network (``dlib_face_recognition_resnet_model_v1``, CC0) and its 5-point landmark model
(CC0) ship inside the ``face-recognition-models`` wheel and run on the ``dlib-bin`` wheel: nothing is
downloaded. They are far too big for a camera box (about 22 MB and a ResNet-29 at 150 px), so they never
leave training: the compact student learns to reproduce what the descriptor sees in a face (feature
distillation) and a linear gender probe on the descriptors gives it soft targets.

The descriptor is computed from the original image, on the face box the edge's detector found (the same
box the student's chips are cut from), aligned the way dlib's network expects.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from footfall.core.logs import log_event
from footfall.models.chips import FaceBoxes
from footfall.models.datasets import FaceRecord, ImageSource

logger = logging.getLogger("footfall.models.teacher")

DESCRIPTOR_SIZE = 128
TEACHER_ID = "dlib-resnet-v1"


class TeacherUnavailable(RuntimeError):
    """The teacher's wheels are not installed."""


class DlibDescriptor:
    """image (BGR) + face box → 128-d descriptor (unit length)."""

    def __init__(self) -> None:
        import importlib.util

        # The models package is located, not imported: its __init__ needs pkg_resources, which current
        # setuptools no longer ships.
        spec = importlib.util.find_spec("face_recognition_models")
        try:
            import dlib
        except ImportError:
            dlib = None
        if dlib is None or spec is None or not spec.submodule_search_locations:
            raise TeacherUnavailable(
                "distillation needs the teacher's wheels: pip install 'footfall[teacher]' "
                "(dlib-bin and face-recognition-models)"
            )
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        self._dlib = dlib
        self.landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.network = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def __call__(self, image_bgr: np.ndarray, box: Sequence[float]) -> np.ndarray:
        import cv2

        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        x1, y1, x2, y2 = (round(v) for v in box)
        shape = self.landmarks(rgb, self._dlib.rectangle(x1, y1, x2, y2))
        chip = self._dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
        descriptor = np.asarray(self.network.compute_face_descriptor(chip), np.float32)
        return descriptor / max(float(np.linalg.norm(descriptor)), 1e-6)


_worker: tuple[DlibDescriptor, ImageSource] | None = None


def _init_worker(location: str) -> None:
    global _worker
    _worker = (DlibDescriptor(), ImageSource(location))


def _describe(task: tuple[int, str, tuple[float, ...]]) -> tuple[int, np.ndarray]:
    assert _worker is not None
    teacher, source = _worker
    index, path, box = task
    image = source.read_bgr(path)
    if image is None:
        return index, np.full(DESCRIPTOR_SIZE, np.nan, np.float32)
    return index, teacher(image, box)


def descriptors_path(folder: Path, detector_id: str, include: np.ndarray) -> Path:
    subset = hashlib.sha256(np.packbits(include).tobytes()).hexdigest()[:8]
    return folder / f"teacher-{TEACHER_ID}-{detector_id}-{subset}.npy"


def compute_descriptors(
    source: ImageSource,
    records: Sequence[FaceRecord],
    faces: FaceBoxes,
    out_path: Path,
    *,
    include: np.ndarray,
    workers: int = 2,
    progress: bool = True,
) -> np.ndarray:
    """N×128 float32 descriptors of the ``include``d records (NaN rows for the rest and for unreadable
    images), cached at ``out_path``. Training includes its train and val records only: the teacher never
    sees a test image."""
    if out_path.is_file():
        return np.load(out_path)
    DlibDescriptor()  # fail early, with the install hint, before starting workers
    from tqdm import tqdm

    out = np.full((len(records), DESCRIPTOR_SIZE), np.nan, np.float32)
    tasks = [
        (i, r.path, tuple(float(v) for v in faces.boxes[i]))
        for i, r in enumerate(records)
        if faces.readable[i] and include[i]
    ]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(str(source.location),)) as pool:
        for index, descriptor in tqdm(
            pool.imap_unordered(_describe, tasks, chunksize=64),
            total=len(tasks),
            desc=f"teacher {source.name}",
            disable=not progress,
            unit="img",
        ):
            out[index] = descriptor
    tmp = out_path.with_name(out_path.name + ".tmp.npy")
    np.save(tmp, out)
    tmp.replace(out_path)
    log_event(logger, logging.INFO, "teacher descriptors cached", path=str(out_path), images=len(tasks))
    return out


def _fit_logistic(x, y, strength: float):  # type: ignore[no-untyped-def]
    """L2-regularised logistic regression (LBFGS, float64); returns weights with the bias last."""
    import torch

    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def closure():  # type: ignore[no-untyped-def]
        optimizer.zero_grad()
        logits = x @ w[:-1] + w[-1]
        penalty = (w[:-1] ** 2).sum() / (2 * strength * len(y))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + penalty
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy().copy()


def fit_gender_probe(
    descriptors: np.ndarray, labels: np.ndarray, val_descriptors: np.ndarray, val_labels: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """A logistic-regression gender probe on the teacher's descriptors, its inverse L2 strength C chosen on
    validation. Returns (weights with the bias last, validation accuracy, C)."""
    import torch

    x = torch.from_numpy(np.nan_to_num(descriptors)).double()
    y = torch.from_numpy(labels).double()
    best: tuple[float, float, np.ndarray] | None = None
    for strength in (0.1, 1.0, 10.0, 100.0):
        weights = _fit_logistic(x, y, strength)
        accuracy = float((probe_logits(weights, val_descriptors).argmax(1) == val_labels).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, strength, weights)
    assert best is not None
    return best[2], best[0], best[1]


def probe_logits(weights: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """Two-class logits [female, male] from the probe (male is the positive class)."""
    score = np.nan_to_num(descriptors) @ weights[:-1] + weights[-1]
    return np.stack([-score / 2, score / 2], axis=1).astype(np.float32)

