"""A teacher for distillation: dlib's ResNet face descriptor, computed once per training image and cached.

The descriptor network (``dlib_face_recognition_resnet_model_v1``, CC0) and its 5-point landmark model
(CC0) ship inside the ``face-recognition-models`` wheel and run on the ``dlib-bin`` wheel: nothing is
downloaded. They are far too big for a camera box (about 22 MB and a ResNet-29 at 150 px), so they never
leave training: the compact student learns to reproduce what the descriptor sees in a face (feature
distillation) and a small gender probe on the descriptors gives it soft targets.

The descriptor is computed from the original image, on the face box the edge's detector found (the same
box the student's chips are cut from), aligned the way dlib's network expects. :class:`Teacher` holds what the
student is trained towards: those descriptors and the probe's soft targets, and the loss that pulls it there.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from footfall.core.logs import log_event
from footfall.models.chips import FaceBoxes
from footfall.models.datasets import FaceRecord, ImageSource

if TYPE_CHECKING:
    import torch
    from footfall.models.recipe import Recipe
    from footfall.models.train import SplitData

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


class GenderProbe:
    """A small MLP reading gender from the teacher's descriptors; its tempered probabilities are the student's
    soft targets. (On UTKFace val it beat a logistic probe by 1.3 points: the descriptor is not linear in
    gender for children and older faces.) Trained on train, its epoch count chosen on val."""

    SCALE = 10.0  # unit descriptors → inputs of order one

    def __init__(self, hidden: int = 256, seed: int = 0) -> None:
        import torch

        with torch.random.fork_rng():  # seeded on its own: the student's random stream stays as it was
            torch.manual_seed(seed)
            self.network = torch.nn.Sequential(
                torch.nn.Linear(DESCRIPTOR_SIZE, hidden),
                torch.nn.ReLU(),
                torch.nn.Dropout(0.3),
                torch.nn.Linear(hidden, 2),
            )
        self.val_accuracy = 0.0
        self.epochs = 0

    def logits(self, descriptors: np.ndarray) -> np.ndarray:
        import torch

        self.network.eval()
        with torch.no_grad():
            x = torch.from_numpy(np.nan_to_num(descriptors)).float() * self.SCALE
            return self.network(x).numpy()

    def accuracy(self, descriptors: np.ndarray, labels: np.ndarray) -> float:
        return float((self.logits(descriptors).argmax(1) == labels).mean())

    @classmethod
    def fit(
        cls,
        descriptors: np.ndarray,
        labels: np.ndarray,
        val_descriptors: np.ndarray,
        val_labels: np.ndarray,
        *,
        max_epochs: int = 60,
        seed: int = 0,
    ) -> GenderProbe:
        import copy

        import torch

        probe = cls(seed=seed)
        keep = ~np.isnan(descriptors).any(axis=1)
        x = torch.from_numpy(descriptors[keep]).float() * cls.SCALE
        y = torch.from_numpy(labels[keep]).long()
        optimizer = torch.optim.AdamW(probe.network.parameters(), lr=1e-3, weight_decay=1e-3)
        best_accuracy, best_epoch, best_state = -1.0, 0, copy.deepcopy(probe.network.state_dict())
        with torch.random.fork_rng():  # shuffles and dropout masks, without touching the student's stream
            torch.manual_seed(seed)
            for epoch in range(1, max_epochs + 1):
                probe.network.train()
                order = torch.randperm(len(x))
                for start in range(0, len(x), 256):
                    batch = order[start : start + 256]
                    loss = torch.nn.functional.cross_entropy(probe.network(x[batch]), y[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                accuracy = probe.accuracy(val_descriptors, val_labels)
                if accuracy > best_accuracy:
                    best_accuracy, best_epoch = accuracy, epoch
                    best_state = copy.deepcopy(probe.network.state_dict())
        probe.network.load_state_dict(best_state)
        probe.val_accuracy, probe.epochs = best_accuracy, best_epoch
        return probe


class Teacher:
    """The distillation targets for the concatenated training set: the teacher's unit descriptors and its
    gender probe's tempered probabilities (rows without a descriptor are masked out)."""

    def __init__(self, recipe: Recipe, descriptors: np.ndarray, soft: np.ndarray, probe: GenderProbe | None = None):
        import torch

        assert recipe.distill is not None
        self.config = recipe.distill
        self.probe = probe
        self.valid = torch.from_numpy(~np.isnan(descriptors).any(axis=1)).float()
        self.descriptors = torch.from_numpy(np.nan_to_num(descriptors)).float()
        self.soft = torch.from_numpy(soft).float()

    @classmethod
    def fit(
        cls, recipe: Recipe, train_sets: list[SplitData], val_sets: list[SplitData], train_labels: np.ndarray
    ) -> Teacher:
        """The gender probe trained on the training descriptors (its epoch chosen on ``val_sets``), and its soft
        targets for every training image."""
        from footfall.core.classifier import softmax

        assert recipe.distill is not None
        descriptors = np.concatenate([s.descriptors for s in train_sets])
        val_descriptors = np.concatenate([s.descriptors for s in val_sets])
        val_labels = np.concatenate([s.labels for s in val_sets])
        probe = GenderProbe.fit(descriptors, train_labels, val_descriptors, val_labels, seed=recipe.seed)
        soft = softmax(probe.logits(descriptors), recipe.distill.temperature)
        return cls(recipe, descriptors, soft, probe)

    def loss(self, logits: torch.Tensor, projected: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """The distillation term of a batch: 1 − cosine to the descriptors and the KL to the soft targets."""
        import torch
        from torch.nn import functional

        rows = torch.from_numpy(index)
        valid = self.valid[rows]
        count = valid.sum().clamp(min=1.0)
        cosine = functional.cosine_similarity(projected, self.descriptors[rows], dim=1)
        feature = ((1.0 - cosine) * valid).sum() / count
        t = self.config.temperature
        kl = functional.kl_div(functional.log_softmax(logits / t, dim=1), self.soft[rows], reduction="none").sum(dim=1)
        soft = (kl * valid).sum() / count * (t * t)
        return self.config.feature_weight * feature + self.config.soft_weight * soft
