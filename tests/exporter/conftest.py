"""Fixtures for the exporter tests: a tiny random gender model, its checkpoint and a clean bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from footfall.core.manifest import BundleManifest, ClassifierContract, Provenance, TensorSpec, utc_now  # noqa: E402
from footfall.core.preprocess import FaceCropSpec  # noqa: E402
from footfall.exporter.bundle_writer import write_manifest  # noqa: E402
from footfall.models.checkpoint import CHECKPOINT_FORMAT, save_checkpoint  # noqa: E402
from footfall.models.network import build_model  # noqa: E402

TINY_ARCH = {"stem": [8, 16], "widths": [16, 32, 32], "depths": [2, 1, 1], "dropout": 0.0}
SPEC = FaceCropSpec(size=32, margin=0.2)


def synthetic_inputs(count: int, seed: int) -> np.ndarray:
    """Smooth random images in the normalised range (what a chip looks like to the network, roughly)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.8, 0.8, (count, 3, 1, 1))
    coarse = rng.normal(0, 0.5, (count, 8, 8, 3)).astype(np.float32)
    detail = np.stack([cv2.resize(c, (SPEC.size, SPEC.size)) for c in coarse]).transpose(0, 3, 1, 2)
    return np.clip(base + detail, -1, 1).astype(np.float32)


def synthetic_labels(x: np.ndarray) -> np.ndarray:
    return (x[:, 0].mean(axis=(1, 2)) > x[:, 2].mean(axis=(1, 2))).astype(np.int64)


_TINY_STATE: dict = {}


def tiny_model():
    """A tiny network trained for a few seconds on a synthetic task (is the image redder than blue?), so
    its logits depend on the input: a random network's are nearly constant, and parity would mean nothing."""
    model = build_model("facenet-small", **TINY_ARCH)
    if not _TINY_STATE:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a tiny net on a busy 2-core box: one thread is many times faster
        torch.manual_seed(0)
        model = build_model("facenet-small", **TINY_ARCH)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for step in range(40):
            x = synthetic_inputs(32, seed=1000 + step)
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(synthetic_labels(x)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        _TINY_STATE.update({k: v.clone() for k, v in model.state_dict().items()})
        torch.set_num_threads(threads)
    model.load_state_dict(_TINY_STATE)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    model = tiny_model()
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.pt"
    save_checkpoint(
        {
            "format": CHECKPOINT_FORMAT, "arch": "facenet-small", "arch_kwargs": TINY_ARCH,
            "state_dict": model.state_dict(), "preprocess": SPEC.model_dump(), "labels": ["female", "male"],
            "temperature": 1.5, "abstain_threshold": 0.6,
            "metrics": {"val": {"accuracy": 0.5, "n": 10, "roc_auc": float("nan")}},
            "training_data": ["random weights, no data"], "data_terms": "none", "recipe": {"name": "tiny"},
            "seed": 0,
        },
        path,
    )  # fmt: skip
    (path.parent / "MODEL_CARD.md").write_text("# tiny\n\nA random test model.\n")
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    from footfall.exporter.gender_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(tiny_model(), SPEC.size, path)
    return path


@pytest.fixture(scope="session")
def pristine_bundle(tmp_path_factory, tiny_onnx: Path) -> Path:
    """A valid FP32 gender bundle, written the way the exporter writes one (no dataset needed)."""
    folder = tmp_path_factory.mktemp("bundle") / "gender-tiny"
    folder.mkdir()
    shutil.copy(tiny_onnx, folder / "model.onnx")
    (folder / "MODEL_CARD.md").write_text("# tiny\n")
    manifest = BundleManifest(
        name="gender-tiny", version="0.0.1", task="gender-classification", created_at=utc_now(),
        precision="fp32",
        input=TensorSpec(name="chips", shape=["batch", 3, SPEC.size, SPEC.size]),
        outputs=[TensorSpec(name="logits", shape=["batch", 2])],
        classifier=ClassifierContract(preprocess=SPEC, labels=["female", "male"]),
        files={}, provenance=Provenance(source="tests", licence="Apache-2.0"),
    )  # fmt: skip
    write_manifest(folder, manifest)
    return folder


@pytest.fixture()
def bundle_copy(tmp_path: Path, pristine_bundle: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(pristine_bundle, target)
    return target
