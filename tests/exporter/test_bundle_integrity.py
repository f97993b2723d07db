"""A corrupt or mismatched bundle is refused with an error that names the fault."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from footfall.core.bundle import BundleError, load_bundle, open_session
from footfall.core.classifier import GenderClassifier
from footfall.core.manifest import MANIFEST_FILE, sha256_file
from footfall.core.paths import BUNDLES_DIR, DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
from typer.testing import CliRunner

from .conftest import SPEC


def edit_manifest(bundle: Path, change) -> None:
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_pristine_bundle_loads_and_runs(bundle_copy: Path) -> None:
    classifier = GenderClassifier(bundle_copy)
    chips = np.random.default_rng(0).integers(0, 255, (3, SPEC.size, SPEC.size, 3), dtype=np.uint8)
    probs = classifier.probabilities(chips)
    assert probs.shape == (3, 2)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_track_thresholds_decide_per_person_only(bundle_copy: Path) -> None:
    per_label = {"female": 0.9, "male": 0.6}
    edit_manifest(bundle_copy, lambda m: m["classifier"].update(abstain_threshold=0.8, track_thresholds=per_label))
    classifier = GenderClassifier(bundle_copy)
    probs = np.array([[0.85, 0.15], [0.3, 0.7], [0.95, 0.05]])
    assert [d.label for d in classifier.decide(probs)] == ["female", "unknown", "female"]
    assert [d.label for d in classifier.decide(probs, per_track=True)] == ["unknown", "male", "female"]


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [({"female": 0.9}, "name each label once"), ({"female": 0.9, "male": 0.3}, r"within \[0.5, 1\]")],
)
def test_bad_track_thresholds_are_refused(bundle_copy: Path, thresholds: dict, message: str) -> None:
    edit_manifest(bundle_copy, lambda m: m["classifier"].update(track_thresholds=thresholds))
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_flipped_byte_is_refused(bundle_copy: Path) -> None:
    model = bundle_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"'model\.onnx' does not match its sha256"):
        load_bundle(bundle_copy)


def test_flipped_byte_in_model_card_is_refused(bundle_copy: Path) -> None:
    card = bundle_copy / "MODEL_CARD.md"
    card.write_bytes(card.read_bytes().replace(b"#", b"$", 1))
    with pytest.raises(BundleError, match=r"'MODEL_CARD\.md' does not match its sha256"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["model.onnx", "MODEL_CARD.md"])
def test_missing_file_is_refused(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=rf"file '{name}' listed in the manifest is missing"):
        load_bundle(bundle_copy)


def test_missing_manifest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(bundle_copy)


def test_truncated_file_is_refused(bundle_copy: Path) -> None:
    model = bundle_copy / "model.onnx"
    model.write_bytes(model.read_bytes()[:-100])
    with pytest.raises(BundleError, match=r"'model\.onnx' is \d+ bytes, the manifest says \d+ \(truncated\?\)"):
        load_bundle(bundle_copy)
    model.write_bytes(model.read_bytes() + bytes(200))  # longer than the manifest says: not truncated
    with pytest.raises(BundleError, match=r"the manifest says \d+ \(appended to, or replaced by another file\?\)"):
        load_bundle(bundle_copy)


def test_wrong_input_size_in_manifest_is_refused(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, lambda m: m["input"].update(shape=["batch", 3, 96, 96]))
    with pytest.raises(BundleError, match=r"input shape \['batch', 3, 96, 96\] does not match the pre-processing"):
        load_bundle(bundle_copy)


def test_input_size_that_disagrees_with_the_graph_is_refused(bundle_copy: Path) -> None:
    def change(manifest: dict) -> None:
        manifest["input"]["shape"] = ["batch", 3, 96, 96]
        manifest["classifier"]["preprocess"]["size"] = 96

    edit_manifest(bundle_copy, change)
    bundle = load_bundle(bundle_copy)  # self-consistent manifest: only the graph can tell
    with pytest.raises(BundleError, match=rf"input 'chips' dimension 2 is {SPEC.size}, the manifest says 96"):
        open_session(bundle)
    with pytest.raises(BundleError, match=f"dimension 2 is {SPEC.size},"):
        GenderClassifier(bundle_copy)


def test_wrong_input_name_is_refused(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, lambda m: m["input"].update(name="images"))
    with pytest.raises(BundleError, match=r"input is named 'chips', the manifest says 'images'"):
        open_session(load_bundle(bundle_copy))


def test_label_count_that_disagrees_with_outputs_is_refused(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, lambda m: m["outputs"][0].update(shape=["batch", 3]))
    with pytest.raises(BundleError, match=r"one output of shape \[batch, 2\]"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        # Found by attack: ['cat', 'dog'] loaded and verified, and the edge then counted nobody as female or male.
        (["cat", "dog"], "labels must be 'female' and 'male', each once, in logit order; got ['cat', 'dog']"),
        (["female", "female"], "labels must be 'female' and 'male'"),
        (["female", "male", "other"], "classifier.labels: List should have at most 2 items"),
    ],
)
def test_labels_other_than_female_and_male_are_refused(bundle_copy: Path, labels: list[str], message: str) -> None:
    edit_manifest(bundle_copy, lambda m: m["classifier"].update(labels=labels))
    with pytest.raises(BundleError, match=re.escape(message)):
        load_bundle(bundle_copy)


def test_labels_in_either_logit_order_load(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, lambda m: m["classifier"].update(labels=["male", "female"]))
    assert load_bundle(bundle_copy).manifest.classifier.labels == ["male", "female"]


def test_manifest_schema_errors_name_the_field(bundle_copy: Path) -> None:
    edit_manifest(bundle_copy, lambda m: m.pop("provenance"))
    with pytest.raises(BundleError, match="provenance: Field required"):
        load_bundle(bundle_copy)


def test_manifest_that_is_not_json_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / MANIFEST_FILE).write_text("{ not json")
    with pytest.raises(BundleError, match="not readable JSON"):
        load_bundle(bundle_copy)


def test_file_names_outside_the_bundle_are_refused(bundle_copy: Path) -> None:
    def change(manifest: dict) -> None:
        manifest["files"]["../escape.onnx"] = manifest["files"]["model.onnx"]

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match="only plain file names"):
        load_bundle(bundle_copy)


def test_unloadable_graph_is_refused_even_with_matching_hash(bundle_copy: Path) -> None:
    model = bundle_copy / "model.onnx"
    model.write_bytes(b"not an onnx graph")

    def change(manifest: dict) -> None:
        manifest["files"]["model.onnx"] = {"sha256": sha256_file(model), "bytes": model.stat().st_size}

    edit_manifest(bundle_copy, change)
    with pytest.raises(BundleError, match="onnxruntime cannot load it"):
        open_session(load_bundle(bundle_copy))


def test_docs_manifest_schema_matches_the_code() -> None:
    from footfall.core.manifest import manifest_schema_text

    written = (Path(__file__).resolve().parents[2] / "docs" / "bundle-manifest-schema.json").read_text()
    regenerate = "regenerate with: footfall schema bundle > docs/bundle-manifest-schema.json"
    assert written == manifest_schema_text(), regenerate


def test_verify_bundle_command_prints_one_line(bundle_copy: Path) -> None:
    from footfall.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["verify-bundle", str(bundle_copy)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok: ")
    (bundle_copy / "MODEL_CARD.md").unlink()
    bad = runner.invoke(app, ["verify-bundle", str(bundle_copy)])
    assert bad.exit_code == 2
    assert "error:" in bad.output and "MODEL_CARD.md" in bad.output
    assert "Traceback" not in bad.output


def test_verify_bundle_opens_the_gender_only_graphs_too(tmp_path: Path) -> None:
    """A pruned graph cut in half with the manifest re-hashed to match: every hash passes, and only opening the
    graph a 'gender-only' site would serve can tell."""
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE

    from footfall.cli import app
    from tests.int8_faults import corrupt_model_copy

    broken = corrupt_model_copy(DEFAULT_GENDER_BUNDLE, tmp_path / "audience", gender_only=True)
    load_bundle(broken)  # manifest and hashes pass
    bad = CliRunner().invoke(app, ["verify-bundle", str(broken)])
    assert bad.exit_code == 2, bad.output
    assert "model-gender.onnx: onnxruntime cannot load it" in bad.output and "Traceback" not in bad.output


def test_verify_bundle_reads_the_parity_probe_too(tmp_path: Path) -> None:
    """Found by attack: a probe.npz replaced by junk (the manifest re-hashed) passed verify-bundle with 'ok', while
    the edge could not run the probe and served the FP32 graphs instead."""
    import shutil

    from footfall.core.paths import DEFAULT_GENDER_BUNDLE

    from footfall.cli import app
    from tests.int8_faults import rehash

    copy = tmp_path / "audience"
    shutil.copytree(DEFAULT_GENDER_BUNDLE, copy)
    (copy / "probe.npz").write_bytes(b"not a probe")
    rehash(copy)
    bad = CliRunner().invoke(app, ["verify-bundle", str(copy)])
    assert bad.exit_code == 2, bad.output
    assert "probe.npz: not a readable parity probe" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        # Found by attack: inputs of a shape the graph cannot take were an onnxruntime traceback.
        (
            lambda p: p.update(inputs=p["inputs"][:, :, :100, :]),
            "the graph cannot run the probe's inputs (4, 3, 100, 192)",
        ),
        (
            lambda p: p.update(inputs=p["inputs"].astype(np.float64)),
            "probe inputs must be uint8 and its reference floats",
        ),
    ],
)
def test_verify_bundle_refuses_a_probe_the_graph_cannot_run_in_one_line(tmp_path: Path, spoil, message: str) -> None:
    from footfall.cli import app
    from tests.int8_faults import rehash

    copy = tmp_path / "detector"
    shutil.copytree(DEFAULT_DETECTOR_BUNDLE, copy)
    with np.load(copy / "probe.npz") as data:
        probe = dict(data)
    spoil(probe)
    np.savez(copy / "probe.npz", **probe)
    rehash(copy)
    bad = CliRunner().invoke(app, ["verify-bundle", str(copy)], catch_exceptions=False)
    assert bad.exit_code == 2, bad.output
    assert message in bad.output and "Traceback" not in bad.output


def test_an_age_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    # Found by attack: NaN passed "strictly ascending" (every comparison with NaN is false) and verify-bundle said ok.
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE

    from tests.int8_faults import rehash

    copy = tmp_path / "audience"
    shutil.copytree(DEFAULT_GENDER_BUNDLE, copy)
    edit_manifest(copy, lambda m: m["classifier"]["age"]["ages"].__setitem__(3, float("nan")))
    rehash(copy)
    with pytest.raises(BundleError, match=r"classifier\.age\.ages\.3: Input should be a finite number"):
        load_bundle(copy)


def test_committed_bundles_verify() -> None:
    """The bundles shipped under models/bundles/ pass the edge's checks, every graph they carry included."""
    from footfall.core.bundle import check_every_graph
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE

    bundles = [p for p in BUNDLES_DIR.iterdir() if (p / MANIFEST_FILE).is_file()]
    assert DEFAULT_DETECTOR_BUNDLE in bundles and DEFAULT_GENDER_BUNDLE in bundles
    assert load_bundle(DEFAULT_GENDER_BUNDLE).has_gender_only_graphs, "so the pruned graphs are opened too"
    for folder in bundles:
        check_every_graph(load_bundle(folder), threads=1)


def test_a_regenerated_card_goes_into_a_bundle_with_its_export_section_and_fresh_hashes(tmp_path) -> None:
    import shutil

    from footfall.core.bundle import load_bundle
    from footfall.core.paths import DEFAULT_GENDER_BUNDLE
    from footfall.exporter.bundle_writer import install_card

    folder = tmp_path / "bundle"
    shutil.copytree(DEFAULT_GENDER_BUNDLE, folder)
    export_section = (folder / "MODEL_CARD.md").read_text().split("## Export", 1)[1]
    install_card(folder, "# A regenerated card\n\nNew figures.\n")
    text = (folder / "MODEL_CARD.md").read_text()
    assert text.startswith("# A regenerated card\n\nNew figures.\n\n## Export") and text.endswith(export_section)
    load_bundle(folder)  # hashes verified


def _load_as_a_service_user(bundle: Path) -> subprocess.CompletedProcess[str]:
    """Loads ``bundle`` in a fresh process; as root, as nobody (root reads anything)."""
    command = [sys.executable, "-c", f"from footfall.core.bundle import load_bundle; load_bundle({str(bundle)!r})"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_bundle_file_its_user_cannot_read_is_one_clear_error(bundle_copy: Path) -> None:
    # Attack (review): bundles copied by root, the agent run as a service user: `verify-bundle`, `doctor` and the
    # agent died with a PermissionError traceback from the hash check (or from the folder check, for a folder it
    # cannot enter).
    reachable = Path(tempfile.mkdtemp(prefix="footfall-unreadable-"))  # pytest's tmp folders are root's alone
    try:
        reachable.chmod(0o755)
        bundle = reachable / "bundle"
        shutil.copytree(bundle_copy, bundle)
        bundle.chmod(0o755)
        (bundle / "model.onnx").chmod(0o000)
        unreadable_file = _load_as_a_service_user(bundle)
        bundle.chmod(0o700)
        closed_folder = _load_as_a_service_user(bundle)
    finally:
        shutil.rmtree(reachable)
    assert unreadable_file.returncode != 0 and "Traceback" not in unreadable_file.stderr.split("BundleError")[-1]
    assert "cannot read 'model.onnx' (Permission denied)" in unreadable_file.stderr, unreadable_file.stderr
    assert "cannot read the bundle folder (Permission denied)" in closed_folder.stderr, closed_folder.stderr


def test_figures_the_manifest_cannot_hold_are_left_out_and_the_bundle_still_loads(tmp_path: Path) -> None:
    """Found in review: an age MAE over validation chips none of whose ages is known is NaN. The manifest refuses it
    (JSON has no NaN: pydantic wrote it as null, which loaded nowhere), so the export failed at its very end."""
    import math

    from footfall.exporter.bundle_writer import manifest_metrics

    figures = manifest_metrics(
        {
            "export_age_parity_val": {"n": 0, "mae_fp32": math.nan, "max_years_diff": 0.5},
            "latency_int8": {"batch_1_ms": math.inf, "cpu": "x86"},
            "attempts": [{"format": "u8s8"}],
        }
    )
    assert figures == {"export_age_parity_val": {"n": 0, "max_years_diff": 0.5}, "latency_int8": {"cpu": "x86"}}
    copy = shutil.copytree(DEFAULT_GENDER_BUNDLE, tmp_path / "bundle")
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["metrics"] = figures
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert load_bundle(copy).manifest.metrics == figures


def test_a_file_given_as_a_bundle_is_said_to_be_a_file(tmp_path: Path) -> None:
    """Review: ``--bundle scores.csv`` said 'bundle folder not found' of a file that is there."""
    file = tmp_path / "scores.csv"
    file.write_text("path,gender\n")
    with pytest.raises(BundleError, match="is a file, not a bundle folder"):
        load_bundle(file)
    with pytest.raises(BundleError, match="bundle folder not found"):
        load_bundle(tmp_path / "missing")
