"""The gender-only graphs of an age bundle: no age head in them, the same gender answers bit for bit, and
reproducible by `footfall export-gender-only` from the bundle alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from footfall.core.bundle import load_bundle, open_session, read_manifest
from footfall.core.manifest import MANIFEST_FILE
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.core.serving import probe_feed

onnx = pytest.importorskip("onnx")


def _ancestors(model: onnx.ModelProto, output: str) -> set[str]:
    """Names of the nodes ``output`` depends on."""
    producer = {out: node for node in model.graph.node for out in node.output}
    seen: set[str] = set()
    todo = [output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        todo.extend(node.input)
    return seen


@pytest.mark.parametrize("reference", [False, True], ids=["int8", "fp32"])
def test_the_shipped_gender_only_graph_has_no_age_head_and_the_same_gender_answers(reference: bool) -> None:
    bundle = load_bundle(DEFAULT_GENDER_BUNDLE)
    whole_path, pruned_path = (
        bundle.graph_path(reference=reference),
        bundle.graph_path(reference=reference, gender_only=True),
    )
    assert whole_path is not None and pruned_path is not None, "the shipped age bundle carries its gender-only graphs"
    whole, pruned = onnx.load(str(whole_path)), onnx.load(str(pruned_path))
    age_head = _ancestors(whole, "age") - _ancestors(whole, "logits")
    assert len(age_head) >= 3, "the whole graph has an age head of its own (else this test proves nothing)"
    assert not age_head & {node.name for node in pruned.graph.node}, "no node of the age head is left"
    assert [o.name for o in pruned.graph.output] == ["logits"]

    with np.load(bundle.probe_path) as probe:  # type: ignore[arg-type]
        feed = probe_feed(bundle.manifest.classifier, probe["inputs"])
    full = open_session(bundle, reference=reference).run(["logits"], {"chips": feed})[0]
    gender_only = open_session(bundle, reference=reference, gender_only=True).run(None, {"chips": feed})[0]
    np.testing.assert_array_equal(gender_only, full)


def _without_gender_only_graphs(target: Path) -> Path:
    """A copy of the shipped age bundle as it was exported before it carried gender-only graphs."""
    copy = shutil.copytree(DEFAULT_GENDER_BUNDLE, target)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    age = manifest["classifier"]["age"]
    for key in ("gender_only_model_file", "gender_only_reference_model_file"):
        (copy / age[key]).unlink()
        del manifest["files"][age.pop(key)]
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert not load_bundle(copy).has_gender_only_graphs
    return copy


def test_export_gender_only_rebuilds_the_shipped_graphs_from_the_bundle_alone(tmp_path: Path) -> None:
    copy = _without_gender_only_graphs(tmp_path / "audience")

    done = subprocess.run(
        [sys.executable, "-m", "footfall", "export-gender-only", str(copy)], capture_output=True, text=True
    )
    assert done.returncode == 0 and f"ok: {copy} gains model-gender" in done.stdout, done.stdout + done.stderr
    rebuilt = load_bundle(copy)
    assert rebuilt.has_gender_only_graphs
    # Again on the bundle that now has them: written anew, not 'gained' (review).
    again = subprocess.run(
        [sys.executable, "-m", "footfall", "export-gender-only", str(copy)], capture_output=True, text=True
    )
    assert again.returncode == 0 and f"ok: {copy} rewrote model-gender" in again.stdout, again.stdout + again.stderr
    for reference in (False, True):
        ours, shipped = (
            rebuilt.graph_path(reference=reference, gender_only=True),
            load_bundle(DEFAULT_GENDER_BUNDLE).graph_path(reference=reference, gender_only=True),
        )
        assert ours is not None and shipped is not None
        assert ours.read_bytes() == shipped.read_bytes(), f"{ours.name} is reproducible"


def test_export_gender_only_that_fails_its_check_leaves_the_bundle_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graphs are written and checked in a staging copy, swapped in only once every graph opens: a failure
    half-way (here, onnxruntime refusing a pruned graph) leaves the bundle the edge loads byte for byte as it was,
    and no staging folder behind."""
    import footfall.core.bundle
    from footfall.core.bundle import BundleError
    from footfall.exporter.gender_only import add_gender_only_graphs

    copy = _without_gender_only_graphs(tmp_path / "audience")
    before = {path.name: path.read_bytes() for path in copy.iterdir()}
    opened = footfall.core.bundle.open_session

    def refuse_pruned(bundle: footfall.core.bundle.Bundle, **kwargs: object) -> object:
        if kwargs.get("gender_only"):
            raise BundleError(f"{bundle.path}: onnxruntime cannot load the pruned graph")
        return opened(bundle, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(footfall.core.bundle, "open_session", refuse_pruned)
    with pytest.raises(BundleError, match="cannot load the pruned graph"):
        add_gender_only_graphs(copy)
    assert {path.name: path.read_bytes() for path in copy.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["audience"], "no staging folder is left"


def test_export_gender_only_run_inside_the_bundle_answers_for_the_bundle_it_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`footfall export-gender-only .` from inside the bundle: the folder is replaced by its staged copy, so '.'
    is then a deleted folder and the bundle must be found by its resolved path."""
    from footfall.exporter.gender_only import add_gender_only_graphs

    copy = _without_gender_only_graphs(tmp_path / "audience")
    monkeypatch.chdir(copy)
    assert add_gender_only_graphs(Path(".")).has_gender_only_graphs
    assert load_bundle(copy).has_gender_only_graphs


def test_export_gender_only_refuses_a_bundle_without_an_age_head_in_one_line(tmp_path: Path) -> None:
    from tests.edge.standin import build_standin_gender_bundle

    bundle = build_standin_gender_bundle(tmp_path / "gender")
    done = subprocess.run(
        [sys.executable, "-m", "footfall", "export-gender-only", str(bundle)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "with an age head" in done.stderr, done.stderr


def test_a_bundle_with_gender_only_graphs_carries_the_pruned_fp32_reference_exactly_when_the_whole_one(
    tmp_path: Path,
) -> None:
    """Without its pruned FP32 graph, a gender-only box whose CPU fails the INT8 parity probe would have nothing to
    fall back to, while the same box in full mode would: such a bundle is refused on load, not at that moment."""
    from footfall.core.bundle import BundleError

    copy = shutil.copytree(DEFAULT_GENDER_BUNDLE, tmp_path / "audience")
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    pruned_reference = manifest["classifier"]["age"].pop("gender_only_reference_model_file")
    (copy / pruned_reference).unlink()
    del manifest["files"][pruned_reference]
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="pruned FP32 reference exactly when") as refused:
        load_bundle(copy)
    assert "\n" not in str(refused.value)


def test_export_gender_only_refuses_files_its_manifest_does_not_list_and_graphs_that_are_not_onnx(
    tmp_path: Path,
) -> None:
    from footfall.exporter.bundle_writer import write_manifest
    from typer.testing import CliRunner

    from footfall.cli import app

    copy = _without_gender_only_graphs(tmp_path / "audience")
    (copy / "notes.txt").write_text("mine")  # was hashed into the manifest, vouched for as part of the bundle
    before = (copy / MANIFEST_FILE).read_bytes()
    checked = CliRunner().invoke(app, ["verify-bundle", str(copy)])
    assert checked.exit_code == 0 and "does not list" in checked.output and "notes.txt" in checked.output
    result = CliRunner().invoke(app, ["export-gender-only", str(copy)])
    assert result.exit_code == 2 and "does not list (notes.txt)" in result.output, result.output
    assert (copy / MANIFEST_FILE).read_bytes() == before and (copy / "notes.txt").read_text() == "mine"

    (copy / "notes.txt").unlink()
    (copy / "model.onnx").write_bytes(b"\xff not a graph")  # hashes made to agree: only the graph is wrong
    write_manifest(copy, read_manifest(copy))
    result = CliRunner().invoke(app, ["export-gender-only", str(copy)])
    assert result.exit_code == 2 and "not a readable ONNX graph" in result.output, result.output
    assert "Traceback" not in result.output


def test_export_gender_only_errors_name_the_users_folder_not_its_deleted_staging_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They named '.c1.staging-646lre81/model.onnx', a folder deleted by the time the message was read."""
    import tempfile

    from footfall.exporter.bundle_writer import write_manifest
    from typer.testing import CliRunner

    from footfall.cli import app

    copy = _without_gender_only_graphs(tmp_path / "c1")
    (copy / "model.onnx").write_bytes(b"\xff not a graph")
    write_manifest(copy, read_manifest(copy))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["export-gender-only", "c1"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: c1/model.onnx: not a readable ONNX graph"), result.output
    assert "staging" not in result.output

    def refused(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(tmp_path / ".c1.staging-646lre81"))

    copy = _without_gender_only_graphs(tmp_path / "c2")
    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    result = CliRunner().invoke(app, ["export-gender-only", "c2"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: cannot write beside c2 (Permission denied)", result.output
