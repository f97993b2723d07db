"""``footfall evaluate`` on a small bundle built here, over images in a folder and in a zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from footfall.core.manifest import BundleManifest, ClassifierContract, Provenance, TensorSpec, utc_now
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE
from footfall.core.preprocess import FaceCropSpec
from footfall.models.network import build_model
from typer.testing import CliRunner

SPEC = FaceCropSpec(size=32, margin=0.2)


@pytest.fixture(scope="module")
def detector_bundle() -> Path:
    if not (DEFAULT_DETECTOR_BUNDLE / "manifest.json").is_file():
        pytest.fail(f"the shipped face detector bundle is missing: {DEFAULT_DETECTOR_BUNDLE}")
    return DEFAULT_DETECTOR_BUNDLE


def make_bundle(folder: Path, threshold: float = 0.5001, *, age: bool = False) -> Path:
    """A tiny untrained classifier exported to ONNX with a valid manifest (scaffolding for the test); ``age``
    gives it an age head (a second output)."""
    from footfall.core.manifest import AgeContract
    from footfall.exporter.bundle_writer import write_manifest
    from footfall.models.network import GenderAgeGraph

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = build_model(
        "facenet-small", stem=[8], stem_strides=[2], widths=[16], depths=[1], age_classes=81 if age else 0
    ).eval()
    outputs = ["logits", "age"] if age else ["logits"]
    torch.onnx.export(
        GenderAgeGraph(model) if age else model,
        (torch.zeros(1, 3, SPEC.size, SPEC.size),),
        str(folder / "model.onnx"),
        opset_version=17,
        input_names=["chips"],
        output_names=outputs,
        dynamic_axes={"chips": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
        dynamo=False,
    )
    manifest = BundleManifest(
        name="tiny",
        version="0",
        task="gender-classification",
        created_at=utc_now(),
        precision="fp32",
        input=TensorSpec(name="chips", shape=["batch", 3, SPEC.size, SPEC.size]),
        outputs=[TensorSpec(name="logits", shape=["batch", 2])]
        + ([TensorSpec(name="age", shape=["batch", 81])] if age else []),
        classifier=ClassifierContract(
            preprocess=SPEC,
            labels=["female", "male"],
            temperature=1.0,
            abstain_threshold=threshold,
            age=AgeContract(ages=list(range(81)), band_threshold=0.2) if age else None,
        ),
        files={},
        provenance=Provenance(source="test", licence="Apache-2.0"),
    )
    write_manifest(folder, manifest)
    return folder


def synthetic_images(count: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    images = []
    for i in range(count):
        image = rng.integers(0, 255, (48 + 8 * (i % 3), 64, 3)).astype(np.uint8)
        cv2.circle(image, (32, 24), 14, (int(40 + 20 * i) % 255, 160, 200), -1)
        images.append((f"imgs/face_{i}.jpg", image))
    return images


def write_csv(path: Path, count: int) -> Path:
    rows = ["path,gender,age,race,split"]
    ages = [5, 15, 25, 45, 70, ""]
    for i in range(count):
        rows.append(
            f"imgs/face_{i}.jpg,{'male' if i % 2 else 'female'},{ages[i % 6]},{i % 3},"
            f"{'test' if i < count - 2 else 'val'}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder, archive = tmp_path / "folder", tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, image in synthetic_images(14):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / name), image)
            zf.write(folder / name, name)
    return write_csv(tmp_path / "faces.csv", 14), folder, archive


def test_evaluate_bundle_folder_and_zip_agree(tmp_path: Path, dataset, detector_bundle) -> None:
    from footfall.models.evaluate import evaluate_bundle, format_report

    csv, folder, archive = dataset
    bundle = make_bundle(tmp_path / "bundle")
    from_folder = evaluate_bundle(bundle, csv, folder, split="test", progress=False)
    from_zip = evaluate_bundle(bundle, csv, archive, split="test", progress=False)
    assert json.dumps(from_folder["metrics"]) == json.dumps(from_zip["metrics"])
    m = from_folder["metrics"]
    assert m["n"] == 12  # two rows are val; every test image counts, found face or not
    assert from_folder["no_face_found"] <= 12
    matrix = np.array(from_folder["confusion_matrix"])
    assert matrix.sum() == 12 and m["accuracy"] == pytest.approx(np.trace(matrix) / 12)
    decisions = from_folder["decisions"]
    assert sum(decisions.values()) == 12
    assert decisions["unknown"] / 12 == pytest.approx(m["abstention_rate"])
    assert set(from_folder["by_race"]) == {"White", "Black", "Asian"}
    assert sum(row["n"] for row in from_folder["by_race"].values()) == 12
    assert list(from_folder["by_age"]) == ["0-12", "13-19", "20-39", "40-59", "60+"]
    assert sum(row["n"] for row in from_folder["by_age"].values()) == 10  # two rows have no age
    text = format_report(from_folder)
    for needle in (
        "accuracy",
        "balanced accuracy",
        "ROC AUC",
        "ECE",
        "abstention",
        "per race",
        "per age band",
        "confusion matrix",
    ):
        assert needle in text


def test_evaluate_cli_writes_json_and_plots(tmp_path: Path, dataset, detector_bundle) -> None:
    from footfall.cli import app

    csv, _, archive = dataset
    bundle = make_bundle(tmp_path / "bundle")
    out_json, plots = tmp_path / "out" / "report.json", tmp_path / "plots"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--bundle",
            str(bundle),
            "--csv",
            str(csv),
            "--images",
            str(archive),
            "--json",
            str(out_json),
            "--plots",
            str(plots),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "balanced accuracy" in result.output

    def not_json(constant: str) -> None:
        raise AssertionError(f"{constant} is not standard JSON (strict parsers refuse it)")

    report = json.loads(out_json.read_text(), parse_constant=not_json)  # undefined figures are null
    assert report["metrics"]["n"] == 14
    for name in ("confusion_matrix.png", "roc.png", "reliability.png", "per_race.png", "per_age.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_evaluate_errors_are_one_line(tmp_path: Path, dataset, detector_bundle) -> None:
    from footfall.cli import app

    csv, folder, _ = dataset
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", "--bundle", str(tmp_path / "nothing"), "--csv", str(csv), "--images", str(folder)]
    )
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    bundle = make_bundle(tmp_path / "bundle")
    (folder / "imgs" / "face_3.jpg").unlink()
    result = runner.invoke(app, ["evaluate", "--bundle", str(bundle), "--csv", str(csv), "--images", str(folder)])
    assert result.exit_code == 2 and "missing" in result.output
    result = runner.invoke(
        app,
        ["evaluate", "--bundle", str(bundle), "--csv", str(csv), "--images", str(folder), "--split", "train"],
    )
    assert result.exit_code == 2 and "no rows" in result.output


def test_evaluate_refuses_outputs_it_cannot_write_and_a_reference_it_does_not_have_before_running(
    tmp_path: Path, dataset, detector_bundle
) -> None:
    from footfall.cli import app

    csv, folder, _ = dataset
    bundle = make_bundle(tmp_path / "bundle")
    runner = CliRunner()
    base = ["evaluate", "--bundle", str(bundle), "--csv", str(csv), "--images", str(folder), "--no-progress"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for extra, words in (
        (["--json", str(tmp_path)], "is a folder"),  # IsADirectoryError after the whole evaluation
        (["--json", str(a_file / "report.json")], "cannot write here"),
        (["--plots", str(a_file)], "exists and is not a folder"),  # FileExistsError, likewise
        (["--split", "holdout"], "choose one of train, val, test"),
    ):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and words in result.output, (extra, result.output)
        assert "balanced accuracy" not in result.output and "Traceback" not in result.output
    # An INT8 bundle without its FP32 reference was measured in INT8 under --reference's FP32 heading.
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "precision": "int8"}))
    result = runner.invoke(app, [*base, "--reference"])
    assert result.exit_code == 2 and "has no FP32 reference graph" in result.output, result.output
    result = runner.invoke(app, [*base, "--split", "TEST"])  # split names are read as the CSV's are
    assert result.exit_code == 0 and "[split test]" in result.output, result.output


def test_model_card_copies_the_evaluation_figures(tmp_path: Path, dataset, detector_bundle) -> None:
    from footfall.models.card import read_card_metrics, render
    from footfall.models.evaluate import evaluate_bundle

    csv, folder, _ = dataset
    bundle = make_bundle(tmp_path / "bundle")
    report = evaluate_bundle(bundle, csv, folder, split="test", progress=False)
    kwargs = {"stem": [8], "stem_strides": [2], "widths": [16], "depths": [1]}
    checkpoint = {
        "arch": "facenet-small", "arch_kwargs": kwargs, "preprocess": SPEC.model_dump(),
        "labels": ["female", "male"], "temperature": 1.2, "abstain_threshold": 0.5001,
        "metrics": {"val": {"n": 3, "accuracy": 0.5, "roc_auc": 0.5, "ece": 0.1, "abstention_rate": 0.0,
                            "answered_accuracy": 0.5}},
        "training_data": ["synthetic faces"], "data_terms": "test only", "seed": 1,
        "recipe": {"train": {"lr": 0.002}, "datasets": [{"name": "synthetic", "weight": 1.0}],
                   "calibration": {"threshold_min_age": 13, "target_accuracy": 0.97, "max_abstention": 0.15}},
    }  # fmt: skip
    reference = evaluate_bundle(bundle, csv, folder, split="test", reference=True, progress=False)
    text = render(checkpoint, {"utkface": report, "wiki": report}, {"precision": "int8"}, None,
                  {"utkface": reference, "wiki": reference})  # fmt: skip
    figures = read_card_metrics(text)
    assert figures["shipped"]["wiki"]["accuracy"] == report["metrics"]["accuracy"]
    assert figures["shipped"]["utkface"]["race_gap"] == report["metrics"]["race_gap"]
    assert figures["reference"]["wiki"]["no_face_found"] == reference["no_face_found"]
    assert figures["cpu"] == report["cpu"]
    assert "| accuracy | " in text and "FP32 reference" in text
    shipped, fp32 = report["metrics"]["accuracy"], reference["metrics"]["accuracy"]
    assert f"| accuracy | {100 * shipped:.2f} % | {100 * fp32:.2f} %" in text
    assert "### Per race (UTKFace), utkface test" in text and "### Per age band, wiki test" in text
    assert "Known failure modes" in text and "Intended use" in text


def test_evaluate_reports_the_age_head_with_its_plots(tmp_path: Path, dataset, detector_bundle) -> None:
    from footfall.cli import app

    csv, _, archive = dataset
    bundle = make_bundle(tmp_path / "bundle", age=True)
    out_json, plots = tmp_path / "out" / "report.json", tmp_path / "plots"
    result = CliRunner().invoke(
        app,
        [
            *("evaluate", "--bundle", str(bundle), "--csv", str(csv), "--images", str(archive)),
            *("--json", str(out_json), "--plots", str(plots), "--no-progress"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "children (0-12) recall" in result.output
    age = json.loads(out_json.read_text())["age"]
    # 14 images, ages 5, 15, 25, 45, 70 and one unknown in turn: 12 of known age, 3 of them children.
    assert age["n"] == 12 and age["children"] == 3
    assert sum(map(sum, age["band_confusion"])) == 12 and len(age["true_years"]) == 12
    assert abs(age["mae"] - np.mean(np.abs(np.subtract(age["predicted_years"], age["true_years"])))) < 0.01
    assert set(age["by_gender"]) == {"female", "male"} and sum(r["n"] for r in age["by_gender"].values()) == 12
    for name in ("age_scatter.png", "age_bands.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_evaluate_says_what_its_figures_are_over(tmp_path: Path, dataset, detector_bundle, caplog) -> None:
    """Review: per-group columns headed 'female %' and 'answered %' were recalls and accuracy on answered faces
    ('abstain 0.00 %  answered 50.00 %' read as a contradiction); a race gap of 28.57 points from groups of one or
    two faces came without a word; faces without a race dropped out of the race table unsaid; training rows were
    evaluated without a warning, duplicated rows counted twice unsaid; one label only printed AUC 'nan'."""
    import logging

    from footfall.models.evaluate import evaluate_bundle, format_report

    csv, folder, _ = dataset
    bundle = make_bundle(tmp_path / "bundle")
    rows = csv.read_text().splitlines()
    # One face without race, one row repeated, two rows of the train split.
    no_race = rows[1].split(",")
    no_race[3] = ""
    edited = [rows[0], ",".join(no_race), *rows[2:], rows[2], rows[3].replace(",test", ",train")]
    edited += [rows[4].replace(",test", ",train")]
    csv.write_text("\n".join(edited) + "\n")
    with caplog.at_level(logging.WARNING, logger="footfall.models.evaluate"):
        report = evaluate_bundle(bundle, csv, folder, detector_bundle=detector_bundle, progress=False)
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "training-split rows" in warnings and "repeat an image" in warnings, warnings
    text = format_report(report)
    assert "[every row: no --split given]; 2 rows of the train split" in text, text
    assert "female recall %" in text and "answered acc %" in text and "female %" not in text, text
    assert "(no race given: 1 faces, in no race group)" in text, text
    assert "smallest group" in text and "a group this small moves by chance" in text, text
    one_label = tmp_path / "women.csv"
    one_label.write_text("\n".join(row for row in rows if ",female," in row or row == rows[0]) + "\n")
    report = evaluate_bundle(bundle, one_label, folder, detector_bundle=detector_bundle, progress=False)
    assert "ROC AUC            n/a (needs faces of both labels)" in format_report(report)
