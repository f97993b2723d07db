"""The parity self-check where a bundle is served: INT8 that strays on this CPU is replaced by FP32."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from footfall.core.bundle import Bundle, BundleError, load_bundle, open_session
from footfall.core.classifier import GenderClassifier
from footfall.core.detector import FaceDetector
from footfall.core.manifest import MANIFEST_FILE
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
from footfall.core.serving import probe_feed, run_probe

from tests.int8_faults import broken_int8_copy, corrupt_model_copy, rehash, unloadable_int8_copy

SHIPPED = {"detector": DEFAULT_DETECTOR_BUNDLE, "gender": DEFAULT_GENDER_BUNDLE}
LOADERS = {"detector": FaceDetector, "gender": GenderClassifier}


@pytest.mark.parametrize("kind", SHIPPED)
def test_shipped_int8_passes_its_probe_on_this_cpu(kind: str) -> None:
    model = LOADERS[kind](SHIPPED[kind], self_check=True)
    serving = model.serving
    assert (serving.precision, serving.parity) == ("int8", "passed"), serving
    assert serving.probe_error is not None and serving.tolerance is not None
    assert serving.probe_error <= serving.tolerance


@pytest.mark.parametrize("kind", SHIPPED)
def test_broken_int8_is_replaced_by_the_fp32_reference(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = broken_int8_copy(SHIPPED[kind], tmp_path / kind)
    with caplog.at_level(logging.INFO):
        model = LOADERS[kind](broken, self_check=True)
    _one_fallback_error(caplog)
    serving = model.serving
    assert (serving.precision, serving.parity) == ("fp32", "failed"), serving
    assert serving.probe_error is not None and serving.probe_error > serving.tolerance
    assert "tolerance" in (serving.reason or "")
    bundle = _serves_the_reference(model, broken)
    # Without the self-check (exports, evaluation) the bundle's own graph runs, and is far off.
    assert run_probe(bundle, open_session(bundle)).passed is False


def _one_fallback_error(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The one error logged for an INT8 graph replaced by its FP32 reference, naming the bundle and the CPU."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "serving the FP32 reference" in errors[0].getMessage()
    assert errors[0].fields["bundle"] and errors[0].fields["cpu"]
    return errors[0]


def _serves_the_reference(model: Any, path: Path) -> Bundle:
    """Asserts that ``model`` runs the FP32 reference of the bundle at ``path``, output for output; the bundle."""
    bundle = load_bundle(path)
    with np.load(bundle.probe_path) as data:
        feed = probe_feed(bundle.manifest.classifier, data["inputs"])
    name = model.session.get_inputs()[0].name
    served = model.session.run(None, {name: feed})[0]
    np.testing.assert_array_equal(served, open_session(bundle, reference=True).run(None, {name: feed})[0])
    return bundle


@pytest.mark.parametrize("kind", SHIPPED)
def test_int8_this_onnxruntime_cannot_load_is_replaced_by_the_fp32_reference(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: an INT8 graph naming an operator this box's onnxruntime lacks stopped the agent (and
    `--check-config`) with 'onnxruntime cannot load it' although the bundle ships an FP32 reference that loads.
    Like an INT8 graph that strays on this CPU, it depends on the box: the reference is served, and said so."""
    bundle = unloadable_int8_copy(SHIPPED[kind], tmp_path / kind)
    with caplog.at_level(logging.INFO):
        model = LOADERS[kind](bundle, self_check=True)
    error = _one_fallback_error(caplog)
    serving = model.serving
    assert (serving.precision, serving.parity, serving.probe_error) == ("fp32", "failed", None), serving
    reason = serving.reason or ""
    assert reason == error.fields["reason"] and "\n" not in reason and len(reason) <= 200, reason
    assert "model.onnx: onnxruntime cannot load it" in reason and "No Op registered for QuantizeLinearV2" in reason
    _serves_the_reference(model, bundle)


def test_a_pruned_graph_this_onnxruntime_cannot_load_falls_back_alone(tmp_path: Path) -> None:
    bundle = unloadable_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender", pruned_only=True)
    whole = GenderClassifier(bundle, self_check=True).serving
    assert (whole.precision, whole.parity) == ("int8", "passed"), whole
    pruned = GenderClassifier(bundle, self_check=True, age=False)
    assert (pruned.serving.precision, pruned.serving.parity) == ("fp32", "failed"), pruned.serving
    assert "model-gender.onnx: onnxruntime cannot load it" in (pruned.serving.reason or "")
    assert [o.name for o in pruned.session.get_outputs()] == ["logits"]


def test_an_int8_graph_that_cannot_load_and_no_reference_that_can_is_one_error(tmp_path: Path) -> None:
    """No FP32 reference to fall back on, or one that cannot load either: the error is today's one line."""
    bundle = unloadable_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    reference = bundle / "model-fp32.onnx"
    reference.write_bytes(reference.read_bytes()[:1000])
    rehash(bundle)
    with pytest.raises(BundleError, match=r"model-fp32\.onnx: onnxruntime cannot load it"):
        GenderClassifier(bundle, self_check=True)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    del manifest["reference_model_file"], manifest["files"]["model-fp32.onnx"]
    del manifest["classifier"]["age"]["gender_only_reference_model_file"], manifest["files"]["model-gender-fp32.onnx"]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"model\.onnx: onnxruntime cannot load it \(.*No Op registered"):
        GenderClassifier(bundle, self_check=True)


def test_a_graph_file_that_does_not_parse_is_refused_not_replaced(tmp_path: Path) -> None:
    """A graph cut in half (its hash rewritten to match) is damaged on every box, not on this one: the bundle is
    refused, as `--check-config` and `verify-bundle` refuse it, rather than served from its reference."""
    bundle = corrupt_model_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    with pytest.raises(BundleError, match=r"model\.onnx: onnxruntime cannot load it"):
        GenderClassifier(bundle, self_check=True)


def test_unreadable_probe_falls_back_with_its_reason(tmp_path: Path) -> None:
    bundle = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    (bundle / "probe.npz").write_bytes(b"not an npz")
    rehash(bundle)
    serving = GenderClassifier(bundle, self_check=True).serving
    assert (serving.precision, serving.parity) == ("fp32", "failed")
    assert "not a readable parity probe" in (serving.reason or "")


def test_failing_int8_without_a_reference_is_refused(tmp_path: Path) -> None:
    bundle = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    del manifest["reference_model_file"], manifest["files"]["model-fp32.onnx"]
    del manifest["classifier"]["age"]["gender_only_reference_model_file"], manifest["files"]["model-gender-fp32.onnx"]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    (bundle / "model-fp32.onnx").unlink()
    (bundle / "model-gender-fp32.onnx").unlink()
    for age in (True, False):
        with pytest.raises(BundleError, match="fails its parity probe on this CPU and the bundle has no FP32"):
            GenderClassifier(bundle, self_check=True, age=age)


def test_a_gender_only_site_falls_back_to_the_pruned_fp32_reference(tmp_path: Path) -> None:
    """A 'gender-only' site runs no age head, not even when INT8 fails here and FP32 is served instead."""
    bundle = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    classifier = GenderClassifier(bundle, self_check=True, age=False)
    assert (classifier.serving.precision, classifier.serving.parity) == ("fp32", "failed")
    assert [o.name for o in classifier.session.get_outputs()] == ["logits"] and not classifier.runs_age_head


def test_a_gender_only_reference_needs_the_graphs_it_stands_in_for(tmp_path: Path) -> None:
    bundle = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    del manifest["reference_model_file"], manifest["files"]["model-fp32.onnx"]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="carries the pruned FP32 reference exactly when it carries the whole one"):
        GenderClassifier(bundle)
    age = manifest["classifier"]["age"]
    del manifest["files"][age.pop("gender_only_model_file")]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="a gender-only reference graph needs a gender-only model beside it"):
        GenderClassifier(bundle)


def test_probe_file_must_be_listed(tmp_path: Path) -> None:
    bundle = broken_int8_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "gender")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    del manifest["files"]["probe.npz"]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"parity probe 'probe\.npz' is not listed"):
        load_bundle(bundle)
