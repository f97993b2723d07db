"""Evaluating an exported gender bundle exactly as the edge runs it.

Every image goes through the shipped face detector, the shared crop and normalisation, the bundle's
ONNX graph and its calibrated decision rule (temperature, abstention threshold). An image where no face
is found is classified from the whole image and still counts, so no hard case drops out of the figures.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from footfall.core.cpu import describe_cpu
from footfall.core.logs import log_event
from footfall.core.preprocess import whole_image_box
from footfall.models.chips import pick_face
from footfall.models.datasets import ImageSource, load_csv_manifest, race_name
from footfall.models.metrics import (
    AGE_GROUPS,
    age_group,
    binary_report,
    confusion_matrix,
    coverage_curve,
    group_report,
    reliability_bins,
    roc_curve,
)
from footfall.models.slices import ATTRIBUTES, face_attributes, slice_report

logger = logging.getLogger("footfall.models.evaluate")
COVERAGE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


class EvaluationError(RuntimeError):
    pass


def _serves_fp32(bundle: str | Path, role: str) -> bool:
    """Whether ``--reference`` can run the bundle in FP32: with its FP32 reference graph, or an FP32 model; else
    :class:`EvaluationError` (an INT8 bundle without one would be measured in INT8 under an FP32 heading)."""
    from footfall.core.bundle import load_bundle

    loaded = load_bundle(bundle, verify_hashes=False)
    if loaded.reference_model_path is not None:
        return True
    if loaded.manifest.precision == "fp32":
        return False
    raise EvaluationError(f"{bundle}: the {role} bundle has no FP32 reference graph, which --reference runs")


def evaluate_bundle(
    bundle: str | Path,
    csv: str | Path,
    images: str | Path,
    *,
    split: str | None = None,
    detector_bundle: str | Path | None = None,
    reference: bool = False,
    progress: bool = True,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Runs the bundle over the CSV's images; returns every figure (see :func:`format_report`)."""
    from footfall.core.classifier import GenderClassifier
    from footfall.core.detector import FaceDetector
    from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE
    from tqdm import tqdm

    # ``reference``: both networks in FP32, the figures no CPU's integer kernels can change.
    detector_path = detector_bundle or DEFAULT_DETECTOR_BUNDLE
    classifier = GenderClassifier(bundle, reference=reference and _serves_fp32(bundle, "classifier"))
    detector = FaceDetector(detector_path, reference=reference and _serves_fp32(detector_path, "detector"))
    records = load_csv_manifest(csv)
    if split is not None:
        records = [r for r in records if r.split == split]
    if not records:
        raise EvaluationError(f"{csv}: no rows" + (f" in split {split!r}" if split else ""))
    trained_on = sum(r.split == "train" for r in records)
    if trained_on:
        # Figures over faces a model learnt from measure its memory, not the model: say so where they are made.
        log_event(
            logger,
            logging.WARNING,
            "evaluating training-split rows: figures on faces the model may have learnt from; give --split test",
            rows=len(records),
            train_rows=trained_on,
        )
    repeated = len(records) - len({r.path for r in records})
    if repeated:
        log_event(logger, logging.WARNING, "rows repeat an image: each row counts", repeated_rows=repeated)
    unknown_labels = {r.gender for r in records} - set(classifier.labels)
    if unknown_labels:
        raise EvaluationError(f"{csv}: labels {sorted(unknown_labels)} are not the bundle's {classifier.labels}")
    source = ImageSource(images)
    missing = [r.path for r in records if not source.exists(r.path)]
    if missing:
        raise EvaluationError(f"{images}: {len(missing)} image(s) of the CSV are missing, e.g. {missing[0]!r}")

    kept, chips, no_face, several, unreadable = [], [], 0, 0, []
    attributes: list[dict[str, float]] = []
    probabilities: list[np.ndarray] = []
    age_probabilities: list[np.ndarray] = []

    def classify(batch: list[np.ndarray]) -> None:
        outputs = classifier.infer(np.stack(batch))
        probabilities.append(outputs.gender)
        if outputs.age is not None:
            age_probabilities.append(outputs.age)

    for record in tqdm(records, desc="evaluate", disable=not progress, unit="img", mininterval=2):
        image = source.read_bgr(record.path)
        if image is None:
            unreadable.append(record.path)
            continue
        detections = detector(image)
        several += len(detections) > 1
        best = pick_face(detections, image.shape)
        if best is None:
            no_face += 1
            chips.append(classifier.crop(image, whole_image_box(image)))
        else:
            chips.append(classifier.crop(image, best.box, best.landmarks))
        attributes.append(
            face_attributes(chips[-1], None if best is None else best.landmarks, classifier.spec.colour_order)
        )
        kept.append(record)
        if len(chips) == batch_size:
            classify(chips)
            chips = []
    if chips:
        classify(chips)
    if unreadable:
        log_event(logger, logging.WARNING, "unreadable images left out", count=len(unreadable), first=unreadable[0])
    if not kept:
        raise EvaluationError(f"{images}: none of the images could be decoded")
    probs = np.concatenate(probabilities).astype(np.float64)
    labels = classifier.labels
    y_true = np.array([labels.index(r.gender) for r in kept])
    threshold = classifier.contract.abstain_threshold
    decisions = classifier.decide(probs)
    report: dict[str, Any] = {
        "bundle": str(bundle),
        "precision": classifier.serving.precision,
        "detector_precision": detector.serving.precision,
        "cpu": describe_cpu(),
        "csv": str(csv),
        "images": str(images),
        "split": split,
        "train_rows": trained_on,
        "labels": labels,
        "temperature": classifier.contract.temperature,
        "abstain_threshold": threshold,
        "metrics": binary_report(y_true, probs, threshold),
        "no_face_found": no_face,
        "several_faces": several,
        "unreadable": len(unreadable),
        "confusion_matrix": confusion_matrix(y_true, probs.argmax(1)).tolist(),
        "decisions": {name: sum(d.label == name for d in decisions) for name in [*labels, "unknown"]},
        # Each evaluated image's most likely label (index into ``labels``), in CSV order: two runs over the
        # same rows (INT8 and FP32) compare image by image, not only in totals.
        "truth": y_true.astype(int).tolist(),
        "predicted": probs.argmax(1).astype(int).tolist(),
        "coverage": coverage_curve(y_true, probs, sorted({*COVERAGE_THRESHOLDS, threshold})),
        "reliability": reliability_bins(probs.max(1), probs.argmax(1) == y_true),
    }
    report["slices"] = slice_report(y_true, probs.argmax(1), attributes)
    fpr, tpr, _ = roc_curve(y_true, probs[:, 1])
    report["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    races = [race_name(r.race) for r in kept]
    if any(r is not None for r in races):
        table = group_report(y_true, probs, races, threshold)
        report["by_race"] = table
        accuracies = [row["accuracy"] for row in table.values()]
        report["metrics"]["race_gap"] = float(max(accuracies) - min(accuracies))
        report["race_gap_smallest_group"] = min(int(row["n"]) for row in table.values())
        report["no_race"] = sum(r is None for r in races)
    bands = [age_group(r.age) for r in kept]
    if any(b is not None for b in bands):
        report["by_age"] = group_report(y_true, probs, bands, threshold, order=[b[0] for b in AGE_GROUPS])
    if age_probabilities:
        report["age"] = age_figures(
            classifier, np.concatenate(age_probabilities), kept, [labels[i] for i in y_true], races
        )
    return report


def age_figures(classifier, age_probs: np.ndarray, kept: list, genders: list[str], races: list[str | None]) -> dict:
    """The age head's figures over the faces of known age (footfall.models.age_metrics.age_report), overall
    (with each face's predicted and true years, for the plot), per true gender and per race group."""
    from footfall.models.age_metrics import age_report

    contract = classifier.contract.age
    grid = np.asarray(contract.ages, float)
    ages = np.array([np.nan if r.age is None else float(r.age) for r in kept])
    figures = age_report(age_probs, ages, grid, contract.band_threshold, keep_points=True)
    figures["band_threshold"] = contract.band_threshold
    groups: dict[str, dict[str, dict]] = {"by_gender": {}, "by_race": {}}
    for key, values in (("by_gender", genders), ("by_race", races)):
        for group in dict.fromkeys(v for v in values if v is not None):
            rows = np.array([v == group for v in values])
            report = age_report(age_probs[rows], ages[rows], grid, contract.band_threshold)
            if report.get("n"):
                report.pop("band_confusion")
                groups[key][str(group)] = report
    figures.update(groups)
    return figures


def _pct(value: float) -> str:
    return "   n/a" if value is None or np.isnan(value) else f"{100 * value:6.2f}"


# Below this many faces, a group's accuracy is within several points of chance: say so beside a gap made from it.
SMALL_GROUP = 100


def _auc(value: float) -> str:
    """ROC AUC, or why there is none (a CSV of one label has no curve)."""
    return "n/a (needs faces of both labels)" if value != value else f"{value:.4f}"


def format_report(report: dict[str, Any]) -> str:
    m = report["metrics"]
    labels = report["labels"]
    lines = [
        f"bundle {report['bundle']} (classifier {report['precision']}, detector "
        f"{report.get('detector_precision', '?')}), T={report['temperature']:.3f}, "
        f"abstain below {report['abstain_threshold']:.3f}",
        f"cpu {report.get('cpu', '?')}",
        f"data {report['csv']}"
        + (f" [split {report['split']}]" if report["split"] else " [every row: no --split given]")
        + (f"; {report['train_rows']} rows of the train split" if report.get("train_rows") else ""),
        f"n                  {m['n']}   (no face found: {report['no_face_found']}, classified from the whole "
        f"image; several faces: {report['several_faces']}; unreadable, left out: {report['unreadable']})",
        f"accuracy           {_pct(m['accuracy'])} %",
        f"balanced accuracy  {_pct(m['balanced_accuracy'])} %",
        f"F1 (male)          {_pct(m['f1_male'])} %",
        f"ROC AUC            {_auc(m['roc_auc'])}",
        f"ECE                {m['ece']:.4f}",
        f"abstention         {_pct(m['abstention_rate'])} %   accuracy on answered {_pct(m['answered_accuracy'])} %",
        "confusion matrix (rows true, columns predicted):",
        f"  {'':8s} " + " ".join(f"{name:>8s}" for name in labels),
    ]
    for name, row in zip(labels, report["confusion_matrix"], strict=True):
        lines.append(f"  {name:8s} " + " ".join(f"{v:8d}" for v in row))
    for key, title in (("by_race", "race"), ("by_age", "age band")):
        if key in report:
            # female/male recall: each gender's faces read as that gender; answered acc: accuracy where not abstained.
            lines.append(
                f"per {title}:   {'n':>6s} {'acc %':>7s} {'female recall %':>15s} {'male recall %':>13s} "
                f"{'abstain %':>9s} {'answered acc %':>14s}"
            )
            for group, row in report[key].items():
                lines.append(
                    f"  {group:10s} {row['n']:6d} {_pct(row['accuracy']):>7s} "
                    f"{_pct(row['female_accuracy']):>15s} "
                    f"{_pct(row['male_accuracy']):>13s} {_pct(row['abstention_rate']):>9s} "
                    f"{_pct(row['answered_accuracy']):>14s}"
                )
            if key == "by_race" and report.get("no_race"):
                lines.append(f"  (no race given: {report['no_race']} faces, in no race group)")
    if "race_gap" in m:
        gap = f"gap best vs worst race group: {100 * m['race_gap']:.2f} points"
        smallest = report.get("race_gap_smallest_group")
        if smallest is not None:
            chance = "; a group this small moves by chance" if smallest < SMALL_GROUP else ""
            gap += f" (smallest group {smallest} faces{chance})"
        lines.append(gap)
    for name, rows in report.get("slices", {}).items():
        lines.append(f"error slice {name} ({ATTRIBUTES[name]}):")
        for row in rows:
            lines.append(
                f"  {row['third']:6s} {row['range']:>15s} n {row['n']:5d}  female recall "
                f"{_pct(row['female_recall'])} %  male recall {_pct(row['male_recall'])} %  "
                f"gap {row['gap_points']:+.2f}"
            )
    if "age" in report:
        lines += format_age(report["age"])
    lines.append("coverage / accuracy on answered:")
    for row in report["coverage"]:
        lines.append(
            f"  threshold {row['threshold']:.3f}: coverage {_pct(row['coverage'])} %, "
            f"answered accuracy {_pct(row['answered_accuracy'])} %"
        )
    return "\n".join(lines)


def format_age(age: dict[str, Any]) -> list[str]:
    from footfall.core.ages import AGE_BANDS

    if not age.get("n"):
        return ["age: no face of known age"]
    lines = [
        f"age (n {age['n']} of known age): MAE {age['mae']:.2f} years, band accuracy {_pct(age['band_accuracy'])} %, "
        f"within one band {_pct(age['within_one_band'])} %",
        f"  band decisions abstain below {age['band_threshold']:.3f}: abstention {_pct(age['band_abstention'])} %, "
        f"answered band accuracy {_pct(age['answered_band_accuracy'])} %",
        f"  children (0-12) recall {_pct(age['children_recall'])} % of {age['children']} (most likely band); "
        f"decided 0-12 with the threshold {_pct(age['children_decided_recall'])} %",
        f"  per group:  {'n':>6s} {'MAE':>6s} {'band %':>7s} {'±1 band %':>9s} {'children %':>10s}",
    ]
    for key in ("by_gender", "by_race"):
        for group, row in age.get(key, {}).items():
            lines.append(
                f"  {group:10s} {row['n']:6d} {row['mae']:6.2f} {_pct(row['band_accuracy']):>7s} "
                f"{_pct(row['within_one_band']):>9s} {_pct(row['children_recall']):>10s}"
            )
    lines.append("  band confusion (rows true, columns most likely band):")
    lines.append("  " + " " * 6 + " ".join(f"{b:>6s}" for b in AGE_BANDS))
    for band, row in zip(AGE_BANDS, age["band_confusion"], strict=True):
        lines.append(f"  {band:>5s} " + " ".join(f"{v:6d}" for v in row))
    return lines


def _standard_json(value: Any) -> Any:
    """``value`` with every NaN or infinite number as None: an undefined figure (an empty reliability bin, the AUC
    of one label) is null in standard JSON, which strict parsers read (Python's NaN is not JSON)."""
    if isinstance(value, dict):
        return {key: _standard_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_standard_json(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_outputs(report: dict[str, Any], json_out: Path | None, plots: Path | None) -> None:
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_standard_json(report), indent=2, allow_nan=False, default=float)
        json_out.write_text(text + "\n")
    if plots is not None:
        from footfall.models.plots import write_plots

        write_plots(report, plots)
