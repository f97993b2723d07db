"""The model card pinned byte for byte for fixed inputs, one with every optional section and one with none.

The expected cards sit in ``tests/models/cards/``. After a deliberate change to the card's wording, rewrite
them with ``python -m tests.models.test_card`` and review the diff.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from footfall.models.card import read_card_metrics, render

CARDS = Path(__file__).resolve().parent / "cards"
TINY = {"stem": [8], "stem_strides": [2], "widths": [16], "depths": [1]}
SPEC = {
    "size": 32,
    "colour_order": "RGB",
    "margin": 0.2,
    "center_shift_y": 0.05,
    "align": True,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
}
NAN = float("nan")


def _metrics(accuracy: float, roc_auc: float, race_gap: float | None = None) -> dict[str, float]:
    metrics = {
        "n": 200,
        "accuracy": accuracy,
        "balanced_accuracy": accuracy - 0.001,
        "f1_male": accuracy + 0.002,
        "roc_auc": roc_auc,
        "ece": 0.0123456,
        "abstention_rate": 0.0875,
        "answered_accuracy": min(accuracy + 0.03, 1.0),
        "tn_female_as_female": 90,
    }
    return metrics | ({"race_gap": race_gap} if race_gap is not None else {})


def _group(n: int, accuracy: float, answered: float = 0.99) -> dict[str, float]:
    return {
        "n": n,
        "accuracy": accuracy,
        "female_accuracy": accuracy - 0.01,
        "male_accuracy": accuracy + 0.01,
        "abstention_rate": 0.1,
        "answered_accuracy": answered,
    }


def _report(name: str, metrics: dict[str, float], *, groups: bool, precision: str = "int8") -> dict[str, Any]:
    report: dict[str, Any] = {
        "bundle": "models/bundles/gender-test",
        "precision": precision,
        "cpu": "Test CPU (x86_64; avx2)",
        "csv": f"/data/{name}-112.csv",
        "images": f"/data/{name}-112.zip",
        "split": "test",
        "metrics": metrics,
        "no_face_found": 3 if precision == "int8" else 2,
        "confusion_matrix": [[90, 10], [8, 92]],
        "coverage": [
            {"threshold": 0.5, "coverage": 1.0, "answered_accuracy": metrics["accuracy"]},
            {"threshold": 0.7, "coverage": 0.9125, "answered_accuracy": 0.97},
            {"threshold": 0.9, "coverage": 0.6, "answered_accuracy": 1.0},
        ],
    }
    if groups:
        report["by_race"] = {"White": _group(120, 0.95), "Black": _group(80, 0.91)}
    report["by_age"] = {"0-12": _group(20, 0.6, NAN), "13+": _group(180, 0.96)}
    return report


def full_inputs() -> tuple[dict, dict[str, dict], dict, dict, dict[str, dict]]:
    """Every optional part: detector report, dlib start, children's weight, distillation, run summary, note,
    geometry search, FP32 reference reports (one missing a measure), latency, targets met, met at must only
    and missed."""
    val = {
        "n": 400,
        "accuracy": 0.94,
        "roc_auc": 0.985,
        "ece": 0.015,
        "abstention_rate": 0.08,
        "answered_accuracy": 0.97,
    }
    checkpoint = {
        "arch": "facenet-small",
        "arch_kwargs": {**TINY, "flip_average": True},
        "preprocess": SPEC,
        "labels": ["female", "male"],
        "temperature": 1.23456,
        "abstain_threshold": 0.7,
        "metrics": {"val": val, "val_utkface": val, "val_wiki": val, "test_wiki": val},
        "training_data": ["UTKFace (non-commercial research)", "wiki (IMDB-WIKI, research only)"],
        "data_terms": "research use only",
        "seed": 3,
        "recipe": {
            "name": "gender-test",
            "model": {"init": "dlib-age-v1"},
            "train": {
                "lr": 0.002,
                "weight_decay": 0.05,
                "batch_size": 64,
                "epochs": 30,
                "max_minutes": 90,
                "label_smoothing": 0.1,
                "ema_decay": 0.999,
                "child_weight": 2.0,
            },
            "datasets": [{"name": "utkface", "weight": 1.0}, {"name": "wiki", "weight": 0.5}],
            "augment": {"flip": 0.5, "blur": 0.2},
            "distill": {"teacher": "dlib-resnet-v1", "feature_weight": 1.0, "temperature": 2.0, "soft_weight": 0.5},
            "history_summary": {
                "epochs": 12,
                "images": 123456,
                "best_epoch": 10,
                "train_minutes": 88.5,
                "stopped_by": "time budget",
            },
            "training_note": "a run for the card's test",
            "geometry_search": [
                {
                    "margin": 0.2,
                    "center_shift_y": 0.05,
                    "flip_average": False,
                    "val_accuracy": {"utkface": 0.93, "wiki": 0.94},
                    "score": 0.935,
                },
                {
                    "margin": 0.25,
                    "center_shift_y": 0.0,
                    "flip_average": True,
                    "val_accuracy": {"utkface": 0.935, "wiki": 0.945},
                    "score": 0.94,
                },
            ],
            "detector_report": {
                "utkface": {"images": 1000, "no_face": 4, "several_faces": 12},
                "wiki": {"images": 900, "no_face": 2, "several_faces": 30},
            },
            "calibration": {"threshold_min_age": 13, "target_accuracy": 0.97, "max_abstention": 0.15},
        },
    }
    reports = {
        "utkface": _report("utkface", _metrics(0.935, 0.981, race_gap=0.03), groups=True),
        "wiki": _report("wiki", _metrics(0.96, 0.97), groups=False),
    }
    reference = {
        "utkface": _report("utkface", _metrics(0.94, 0.982), groups=True, precision="fp32"),
        "wiki": _report("wiki", _metrics(0.92, 0.991), groups=False, precision="fp32"),
    }
    latency = {"size_mb": 1.57, "ms_per_face": 0.544, "note": "2-core CPU"}
    return checkpoint, reports, {"precision": "int8"}, latency, reference


def minimal_inputs() -> tuple[dict, dict[str, dict]]:
    """Only what every card has: random start, no reference reports, no bundle, no latency, no run history."""
    checkpoint, reports, _, _, _ = full_inputs()
    recipe = checkpoint["recipe"]
    checkpoint = {**checkpoint, "arch_kwargs": TINY, "metrics": {"val": checkpoint["metrics"]["val"]}}
    checkpoint["recipe"] = {
        "train": {k: v for k, v in recipe["train"].items() if k != "child_weight"},
        "datasets": recipe["datasets"],
        "calibration": recipe["calibration"],
    }
    reports = copy.deepcopy(reports)
    for report in reports.values():
        del report["cpu"]
        report.pop("by_race", None)
        del report["by_age"]
    return checkpoint, reports


def rendered() -> dict[str, str]:
    checkpoint, reports, manifest, latency, reference = full_inputs()
    return {
        "full.md": render(checkpoint, reports, manifest, latency, reference),
        "minimal.md": render(*minimal_inputs()),
    }


def test_the_card_is_what_it_was_for_fixed_inputs() -> None:
    for name, text in rendered().items():
        assert text == (CARDS / name).read_text(), f"{name} changed: see this module's docstring"


def test_the_full_card_carries_every_section_and_its_figures() -> None:
    text = rendered()["full.md"]
    for heading in ("Crop geometry chosen", "Face detection over the datasets", "Distilled", "- Run: 12 epochs"):
        assert heading in text
    assert "| 0.700 (shipped) |" in text and "**missed**" in text and "aim met" in text
    figures = read_card_metrics(text)
    assert figures["shipped"]["utkface"]["race_gap"] == 0.03 and figures["reference"]["wiki"]["accuracy"] == 0.92
    assert figures["cpu"] == "Test CPU (x86_64; avx2)" and figures["shipped_precision"] == "int8"


def test_the_minimal_card_leaves_the_optional_sections_out() -> None:
    text = rendered()["minimal.md"]
    assert "Started from random weights" in text and "test FP32 reference" not in text
    assert "Crop geometry" not in text and "Distilled" not in text and "### Per " not in text
    assert read_card_metrics(text)["cpu"] == "not recorded"


def test_a_bundle_with_decision_rates_gets_their_table_recall_and_the_correction_method() -> None:
    checkpoint, reports, _, latency, reference = full_inputs()
    rates = {
        "counts": {"female": {"female": 80, "male": 12, "unknown": 8}, "male": {"female": 5, "male": 90, "unknown": 5}},
        "source": "4 walk-by clips of val faces",
    }
    manifest = {
        "precision": "int8",
        "classifier": {"track_thresholds": {"female": 0.8, "male": 0.64}, "decision_rates": rates},
    }
    text = render(checkpoint, reports, manifest, latency, reference)
    assert "## Decision rates and the corrected share" in text and "female ≥ 0.8, male ≥ 0.64" in text
    assert "| female | 100 | 80 (80.00 %) | 12 (12.00 %) | 8 (8.00 %) |" in text
    assert "Recall per gender through the edge: female 80.00 %, male 90.00 %" in text
    assert "Saerens" in text and "4 walk-by clips of val faces" in text
    assert "Decision rates" not in rendered()["full.md"], "a bundle without rates gets no such section"


if __name__ == "__main__":
    CARDS.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (CARDS / name).write_text(text)
        print(f"wrote {CARDS / name}")


def test_an_age_head_gets_its_section_targets_groups_and_anchor() -> None:
    checkpoint, reports, manifest, latency, reference = full_inputs()
    confusion = [[0] * 8 for _ in range(8)]
    confusion[0][0], confusion[0][1], confusion[3][3] = 9, 1, 30
    age = {
        "n": 40, "mae": 5.5, "band_accuracy": 0.65, "within_one_band": 0.95, "band_abstention": 0.2,
        "answered_band_accuracy": 0.7, "children": 10, "children_recall": 0.9, "band_confusion": confusion,
        "band_threshold": 0.4,
        "by_gender": {"female": {"n": 20, "mae": 5.0, "band_accuracy": 0.7, "within_one_band": 0.95,
                                 "children_recall": 0.9}},
    }  # fmt: skip
    reports = {name: {**report, "age": age} for name, report in reports.items()}
    anchor = {"test_utkface": {"n": 40, "mae": 9.4, "band_accuracy": 0.41, "within_one_band": 0.74}}
    text = render(checkpoint, reports, manifest, latency, reference, anchor)
    assert "## Age" in text and "dlib age predictor" in text and "| MAE (years) | 5.50 |" in text
    assert "| age MAE, UTKFace test | <= 5.00 years | 5.50 years | **missed** |" in text
    assert "| children (0-12) recall, UTKFace test | >= 90.00 % | 90.00 % | met |" in text
    assert "| 0-12 | 9 | 1 | 0 |" in text and "| female | 20 | 5.00 |" in text
    # Recall per gender, from each split's confusion matrix.
    assert "### Recall per gender" in text
    # Without an age head there is no age section.
    assert "## Age" not in render(*full_inputs())
