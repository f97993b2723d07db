"""A tiny gender bundle with an age head, for edge tests of age bands: an ONNX graph on the chip's mean colour
whose decisions a test steers by painting the face.

- gender: female when the chip's first channel (red: the chips are RGB) is brighter than its third (blue),
  male when it is darker, unsure when they are equal;
- age: one logit per band (:data:`AGES`, the middle of each band); the chip's mean green level picks the band
  whose level in :data:`GREEN_LEVELS` is nearest, surely (logit ``-s·(g - level)²/2`` up to a term common to all,
  which a Gemm computes exactly), so a painted face reads as one band, and the mean of two bands' faces as
  unsure between them (below :data:`BAND_THRESHOLD`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from footfall.core.ages import AGE_BANDS
from footfall.core.manifest import (
    AgeContract,
    BundleManifest,
    ClassifierContract,
    Provenance,
    TensorSpec,
    file_entry,
    utc_now,
)
from footfall.core.preprocess import FaceCropSpec

AGES = (6.0, 15.0, 21.0, 30.0, 40.0, 50.0, 60.0, 70.0)  # one per band of footfall.core.ages.AGE_BANDS
GREEN_LEVELS = tuple(30 + 26 * index for index in range(len(AGES)))  # 0-255, per band
BAND_THRESHOLD = 0.6
SHARPNESS = 1000.0  # a band's logit falls by this × (distance in normalised green)² / 2
SPEC = FaceCropSpec()


def _normalised(level: float, channel: int) -> float:
    return (level / 255.0 - SPEC.mean[channel]) / SPEC.std[channel]


def face_colour(band: str, gender: str, *, halfway_to_next: bool = False) -> tuple[int, int, int]:
    """The BGR colour to paint a face with so that the stand-in reads it as ``band`` and ``gender``
    ('female', 'male', or 'unknown': neither); ``halfway_to_next``: as likely the next band as this one."""
    red, blue = {"female": (200, 60), "male": (60, 200), "unknown": (128, 128)}[gender]
    index = AGE_BANDS.index(band)  # type: ignore[arg-type]
    green = GREEN_LEVELS[index] if not halfway_to_next else (GREEN_LEVELS[index] + GREEN_LEVELS[index + 1]) // 2
    return blue, green, red


def build_age_standin_bundle(
    folder: Path, *, band_threshold: float = BAND_THRESHOLD, gender_only_graph: bool = True
) -> Path:
    """The stand-in bundle; with ``gender_only_graph`` also its graph pruned to the gender output, as
    ``footfall export`` writes it (what a 'gender-only' site runs)."""
    import onnx
    from footfall.exporter.bundle_writer import write_manifest
    from footfall.exporter.gender_only import write_gender_only_graphs
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    centres = np.array([_normalised(level, 1) for level in GREEN_LEVELS], np.float32)
    gender_weights = np.array([[8.0, -8.0], [0.0, 0.0], [-8.0, 8.0]], np.float32)
    age_weights = np.zeros((3, len(AGES)), np.float32)
    age_weights[1] = SHARPNESS * centres
    age_bias = -SHARPNESS * centres**2 / 2
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["chips", "axes"], ["mean"], keepdims=0),
            helper.make_node("Gemm", ["mean", "wg", "bg"], ["logits"]),
            helper.make_node("Gemm", ["mean", "wa", "ba"], ["age"]),
        ],
        "standin_gender_age",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("age", TensorProto.FLOAT, ["batch", len(AGES)]),
        ],
        initializer=[
            numpy_helper.from_array(gender_weights, "wg"),
            numpy_helper.from_array(np.zeros(2, np.float32), "bg"),
            numpy_helper.from_array(age_weights, "wa"),
            numpy_helper.from_array(age_bias.astype(np.float32), "ba"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    manifest = BundleManifest(
        name="gender-age-standin",
        version="0.0.0",
        task="gender-classification",
        created_at=utc_now(),
        precision="fp32",
        input=TensorSpec(name="chips", shape=["batch", 3, 64, 64]),
        outputs=[TensorSpec(name="logits", shape=["batch", 2]), TensorSpec(name="age", shape=["batch", len(AGES)])],
        classifier=ClassifierContract(
            preprocess=SPEC,
            labels=["female", "male"],
            abstain_threshold=0.6,
            age=AgeContract(ages=list(AGES), band_threshold=band_threshold),
        ),
        files={"model.onnx": file_entry(folder / "model.onnx")},
        provenance=Provenance(source="tests/edge/age_standin.py (not trained)", licence="Apache-2.0"),
    )
    write_manifest(folder, write_gender_only_graphs(folder, manifest) if gender_only_graph else manifest)
    return folder
