"""A stand-in gender bundle for edge tests when the trained one is not there (a fresh checkout before
training). It is a tiny ONNX graph on the chip's mean colour: people counting never depends on it, only the
plumbing (crop, batch, average, decide) is exercised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from footfall.core.manifest import (
    BundleManifest,
    ClassifierContract,
    Provenance,
    TensorSpec,
    file_entry,
    utc_now,
)
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.core.preprocess import FaceCropSpec


def build_standin_gender_bundle(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    weights = numpy_helper.from_array(np.array([[2.0, -2.0], [-1.0, 1.0], [0.5, -0.5]], np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), "axes")
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["chips", "axes"], ["mean"], keepdims=0),
            helper.make_node("Gemm", ["mean", "w", "b"], ["logits"]),
        ],
        "standin_gender",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[weights, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    manifest = BundleManifest(
        name="gender-standin",
        version="0.0.0",
        task="gender-classification",
        created_at=utc_now(),
        precision="fp32",
        input=TensorSpec(name="chips", shape=["batch", 3, 64, 64]),
        outputs=[TensorSpec(name="logits", shape=["batch", 2])],
        classifier=ClassifierContract(preprocess=FaceCropSpec(), labels=["female", "male"], abstain_threshold=0.55),
        files={"model.onnx": file_entry(folder / "model.onnx")},
        provenance=Provenance(source="tests/edge/standin.py (not trained)", licence="Apache-2.0"),
    )
    (folder / "manifest.json").write_text(manifest.dump())
    return folder


def gender_bundle_for_tests(tmp_root: Path) -> Path:
    """The real default bundle when present, otherwise a stand-in built under ``tmp_root``."""
    if (DEFAULT_GENDER_BUNDLE / "manifest.json").is_file():
        return DEFAULT_GENDER_BUNDLE
    return build_standin_gender_bundle(tmp_root / "gender-standin")
