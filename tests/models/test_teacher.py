"""The distillation teacher (dlib's face descriptor) on a real face, and distillation on synthetic chips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE
from footfall.models.checkpoint import load_checkpoint, model_from_checkpoint
from footfall.models.chips import FaceBoxes, pick_face
from footfall.models.datasets import FaceRecord, ImageSource
from footfall.models.recipe import DistillConfig
from footfall.models.teacher import DESCRIPTOR_SIZE, DlibDescriptor, GenderProbe, compute_descriptors
from footfall.models.train import SplitData, train

from tests.conftest import _require
from tests.models.test_train import synthetic_split, tiny_recipe


def teacher() -> DlibDescriptor:
    try:
        return DlibDescriptor()
    except RuntimeError as exc:  # TeacherUnavailable: the wheels of footfall[teacher] are missing
        _require(str(exc))
        raise


def astronaut_with_box() -> tuple[np.ndarray, np.ndarray]:
    """A public-domain portrait (NASA, shipped in scikit-image) and the face box the edge's detector finds."""
    import cv2
    from footfall.core.detector import FaceDetector

    skimage = pytest.importorskip("skimage")
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    face = pick_face(FaceDetector(DEFAULT_DETECTOR_BUNDLE)(image), image.shape)
    assert face is not None
    return image, np.asarray(face.box, np.float32)


def test_descriptor_of_a_face_is_unit_length_and_stable_under_a_mirror() -> None:
    describe = teacher()
    image, box = astronaut_with_box()
    descriptor = describe(image, box)
    assert descriptor.shape == (DESCRIPTOR_SIZE,) and abs(np.linalg.norm(descriptor) - 1) < 1e-4
    width = image.shape[1]
    mirrored_box = np.array([width - box[2], box[1], width - box[0], box[3]])
    mirrored = describe(np.ascontiguousarray(image[:, ::-1]), mirrored_box)
    noise = describe(np.random.default_rng(0).integers(0, 255, image.shape, dtype=np.uint8), box)
    assert float(descriptor @ mirrored) > 0.9, "a face and its mirror image are the same person"
    assert float(descriptor @ noise) < float(descriptor @ mirrored)


def test_descriptors_cover_only_the_included_records(tmp_path: Path) -> None:
    import cv2

    teacher()
    image, box = astronaut_with_box()
    folder = tmp_path / "images"
    folder.mkdir()
    records = []
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), image)
        records.append(FaceRecord(path=f"{i}.png", gender="female", split=("train", "test", "val")[i]))
    faces = FaceBoxes(
        np.repeat(box[None], 3, 0), np.full((3, 5, 2), np.nan, np.float32), np.ones(3, np.int16), np.ones(3, bool)
    )
    include = np.array([True, False, True])
    out = compute_descriptors(
        ImageSource(folder), records, faces, tmp_path / "d.npy", include=include, workers=1, progress=False
    )
    assert np.isnan(out[1]).all(), "the teacher must never see a test image"
    assert np.allclose(out[0], out[2], atol=1e-5) and not np.isnan(out[0]).any()
    assert (tmp_path / "d.npy").is_file()


def with_descriptors(split: SplitData, seed: int) -> SplitData:
    """Teacher descriptors that know the label: a noisy unit vector per class."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 0.05, (len(split.labels), DESCRIPTOR_SIZE)).astype(np.float32)
    vectors[np.arange(len(split.labels)), split.labels] += 3.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    split.descriptors = vectors
    return split


def test_the_probe_reads_gender_from_descriptors() -> None:
    train_split = with_descriptors(synthetic_split(200, 0), 0)
    val_split = with_descriptors(synthetic_split(100, 1), 1)
    probe = GenderProbe.fit(
        train_split.descriptors, train_split.labels, val_split.descriptors, val_split.labels, max_epochs=20
    )
    assert probe.val_accuracy >= 0.95
    assert probe.accuracy(val_split.descriptors, 1 - val_split.labels) <= 0.05


def test_distillation_aligns_the_students_features_with_the_teacher(tmp_path: Path) -> None:
    splits = {
        "train": with_descriptors(synthetic_split(96, 0), 0),
        "val": with_descriptors(synthetic_split(48, 1), 1),
        "test": synthetic_split(48, 2),
    }
    recipe = tiny_recipe(tmp_path, epochs=8).model_copy(update={"distill": DistillConfig()})
    final = load_checkpoint(train(recipe, progress=False, data=({"synthetic": splits}, {"synthetic": {}})))
    assert final["metrics"]["val_synthetic"]["accuracy"] >= 0.9
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    projection = torch.nn.Linear(16 * 2, DESCRIPTOR_SIZE)  # TINY's last width is 32
    projection.load_state_dict(last["resume"]["projection"])
    student = model_from_checkpoint(last)
    student.load_state_dict(last["resume"]["model"])  # the weights the projection was trained with (not the EMA)
    student.eval()
    from footfall.core.preprocess import normalise

    with torch.no_grad():
        x = torch.from_numpy(normalise(splits["train"].chips, recipe.preprocess))
        cosine = torch.nn.functional.cosine_similarity(
            projection(student.embed(x)), torch.from_numpy(splits["train"].descriptors), dim=1
        )
    assert float(cosine.mean()) > 0.8, "the student's features must carry what the teacher sees"
