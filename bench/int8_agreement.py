"""Where INT8 and FP32 disagree: the gender answers of the four detector × classifier precision pairs on
portraits, against the all-FP32 pipeline, with how far the INT8 detector moves the face's box and landmarks.

``footfall evaluate`` and ``footfall evaluate --reference`` give one accuracy each; their difference (issue #13's
figure) is a net count of a few faces whose answer flips. This bench says which stage flips them and which faces
they are:

- per pipeline (INT8 detector with the FP32 classifier, FP32 detector with the INT8 classifier, both INT8), the
  faces whose most likely label differs from the all-FP32 pipeline's, and the accuracy difference they make;
- of those, how many the bundle would have *decided* in FP32 (top probability at or above its abstain
  threshold) and how many had a top probability under 0.6, i.e. faces on the decision boundary;
- the INT8 detector's drift from the FP32 detector on the face it picks: landmarks and box, mean absolute
  difference per coordinate in units of the eye distance (median and 95th percentile over faces);
- per pipeline, its **lean**: the mean change of the female-vs-male logit against the all-FP32 pipeline, with its
  standard error. A lean away from 0 is a systematic shift (correctable); near 0, the flips are noise whose net
  sign is chance, about ±√flips faces for one standard deviation;
- a yardstick: the all-FP32 pipeline on the same images with ±1 grey level of noise added (fixed per image), i.e.
  how many answers a perturbation nobody can see flips.

Faces are read the way ``footfall evaluate`` reads them (same detector call, face choice and crop). Tune on
``val``; ``test`` is for reporting once. Disagreement counts and latencies depend on the CPU's integer kernels:
the CPU line printed first says which CPU they hold for.

Usage: .venv/bin/python bench/int8_agreement.py [--split val] [--limit N] [--json runs/eval/int8-agreement.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np
from footfall.core.bundle import BundleError
from footfall.core.classifier import GenderClassifier
from footfall.core.cpu import describe_cpu
from footfall.core.detector import FaceDetector
from footfall.core.outpaths import OutputPathError, writable_file
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE, data_dir
from footfall.exporter.datasets import DATASETS
from footfall.models.chips import FaceBoxes, cut_chips, detect_boxes
from footfall.models.datasets import DatasetError, ImageSource, load_csv_manifest

BOUNDARY = 0.6  # a top probability under this is a face on the decision boundary
PRECISIONS = ("fp32", "int8")


class GreyNoiseSource(ImageSource):
    """The images with ±1 grey level of noise per pixel and channel, the same for an image on every read."""

    def read_bgr(self, path: str) -> np.ndarray | None:
        image = super().read_bgr(path)
        if image is None:
            return None
        rng = np.random.default_rng(zlib.crc32(path.encode()))
        return np.clip(image.astype(np.int16) + rng.integers(-1, 2, image.shape), 0, 255).astype(np.uint8)


def probabilities(classifier: GenderClassifier, chips: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate(
        [classifier.infer(chips[i : i + batch], age=False).gender for i in range(0, len(chips), batch)]
    )


def drift(reference: FaceBoxes, candidate: FaceBoxes) -> dict[str, float | int]:
    """How far the candidate detector's face lies from the reference's, per coordinate, in eye distances (faces
    both found)."""
    both = ~np.isnan(reference.landmarks).any(axis=(1, 2)) & ~np.isnan(candidate.landmarks).any(axis=(1, 2))
    if not both.any():
        return {"faces": 0}
    ref_marks, ref_boxes = reference.landmarks[both], reference.boxes[both]
    eyes = np.maximum(np.linalg.norm(ref_marks[:, 0] - ref_marks[:, 1], axis=1), 1.0)
    landmarks = np.abs(ref_marks - candidate.landmarks[both]).mean(axis=(1, 2)) / eyes
    boxes = np.abs(ref_boxes - candidate.boxes[both]).mean(axis=1) / eyes
    return {
        "faces": int(both.sum()),
        "landmarks_median": round(float(np.median(landmarks)), 4),
        "landmarks_p95": round(float(np.percentile(landmarks, 95)), 4),
        "box_median": round(float(np.median(boxes)), 4),
        "box_p95": round(float(np.percentile(boxes, 95)), 4),
    }


def logit(probs: np.ndarray) -> np.ndarray:
    """The first label's log-odds against the second (female vs male), clipped away from 0 and 1."""
    clipped = np.clip(probs, 1e-6, 1.0)
    return np.log(clipped[:, 0] / clipped[:, 1])


def disagreement(reference: np.ndarray, candidate: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    """Faces whose most likely label differs from the reference pipeline's, what they are, and the candidate's
    lean: the mean change of the first label's logit, with its standard error."""
    flipped = reference.argmax(1) != candidate.argmax(1)
    top = reference.max(1)
    gained = float((candidate.argmax(1) == truth).mean() - (reference.argmax(1) == truth).mean())
    shift = logit(candidate) - logit(reference)
    return {
        "flipped": int(flipped.sum()),
        "flipped_decided_in_fp32": int((flipped & (top >= threshold)).sum()),
        "flipped_on_boundary": int((flipped & (top < BOUNDARY)).sum()),
        "accuracy_points": round(100 * gained, 2),
        "lean_logit": round(float(shift.mean()), 4),
        "lean_logit_sem": round(float(shift.std(ddof=1) / np.sqrt(len(shift))) if len(shift) > 1 else 0.0, 4),
    }


def measure(data: Path, split: str, limit: int | None, gender: Path, detector: Path) -> dict:
    detectors = {p: FaceDetector(detector, reference=p == "fp32") for p in PRECISIONS}
    classifiers = {p: GenderClassifier(gender, reference=p == "fp32") for p in PRECISIONS}
    if detectors["int8"].serving.precision != "int8" or classifiers["int8"].serving.precision != "int8":
        raise SystemExit("both bundles must serve INT8 here (see `footfall doctor`): there is nothing to compare")
    threshold = classifiers["fp32"].contract.abstain_threshold
    report: dict = {"cpu": describe_cpu(), "split": split, "abstain_threshold": threshold, "datasets": {}}
    for dataset in DATASETS:
        records = [r for r in load_csv_manifest(data / f"{dataset}.csv") if r.split == split]
        if limit is not None and limit < len(records):
            records = [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]
        truth = np.array([classifiers["fp32"].labels.index(record.gender) for record in records])
        spec = classifiers["fp32"].spec
        source = ImageSource(data / f"{dataset}.zip")
        try:
            # footfall's own reading of a portrait (as training's chips and footfall evaluate): the face picked,
            # else the whole image, cut by the shared pre-processing.
            faces = {p: detect_boxes(source, records, detectors[p]) for p in PRECISIONS}
            chips = {p: np.zeros((len(records), spec.size, spec.size, 3), np.uint8) for p in PRECISIONS}
            for p in PRECISIONS:
                cut_chips(source, records, faces[p], spec, chips[p])
        finally:
            source.close()
        probs = {(d, c): probabilities(classifiers[c], chips[d]) for d in PRECISIONS for c in PRECISIONS}
        reference = probs[("fp32", "fp32")]
        noisy_source = GreyNoiseSource(data / f"{dataset}.zip")
        try:
            noisy_faces = detect_boxes(noisy_source, records, detectors["fp32"])
            noisy_chips = np.zeros_like(chips["fp32"])
            cut_chips(noisy_source, records, noisy_faces, spec, noisy_chips)
        finally:
            noisy_source.close()
        noisy = probabilities(classifiers["fp32"], noisy_chips)
        report["datasets"][dataset] = {
            "images": len(records),
            "no_face": {p: int(faces[p].no_face.sum()) for p in PRECISIONS},
            "accuracy_fp32": round(100 * float((reference.argmax(1) == truth).mean()), 2),
            "int8_detector": disagreement(reference, probs[("int8", "fp32")], truth, threshold),
            "int8_classifier": disagreement(reference, probs[("fp32", "int8")], truth, threshold),
            "both_int8": disagreement(reference, probs[("int8", "int8")], truth, threshold),
            "fp32_grey_noise": disagreement(reference, noisy, truth, threshold),
            "detector_drift": drift(faces["fp32"], faces["int8"]),
        }
    return report


def print_report(report: dict) -> None:
    print(f"CPU: {report['cpu']}; split {report['split']}; abstain threshold {report['abstain_threshold']:.3f}")
    print(
        f"{'dataset':12s} {'pipeline':16s} {'flipped':>7s} {'decided':>7s} {'<0.6':>5s} {'Δacc pts':>8s} "
        f"{'lean (logit ± se)':>18s}"
    )
    for dataset, row in report["datasets"].items():
        for pipeline in ("int8_detector", "int8_classifier", "both_int8", "fp32_grey_noise"):
            cell = row[pipeline]
            print(
                f"{dataset:12s} {pipeline:16s} {cell['flipped']:7d} {cell['flipped_decided_in_fp32']:7d} "
                f"{cell['flipped_on_boundary']:5d} {cell['accuracy_points']:+8.2f} "
                f"{cell['lean_logit']:+9.4f} ± {cell['lean_logit_sem']:.4f}"
            )
        d = row["detector_drift"]
        print(
            f"{dataset:12s} {row['images']} faces, FP32 accuracy {row['accuracy_fp32']:.2f} %, no face FP32/INT8 "
            f"{row['no_face']['fp32']}/{row['no_face']['int8']}; INT8 detector drift (eye distances): landmarks "
            f"median {d.get('landmarks_median')} p95 {d.get('landmarks_p95')}, box median {d.get('box_median')} "
            f"p95 {d.get('box_p95')}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=data_dir(),
        help="the face datasets (default: FOOTFALL_DATA, else ../shared/data; now %(default)s)",
    )
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per dataset, spread evenly")
    parser.add_argument(
        "--gender", type=Path, default=DEFAULT_GENDER_BUNDLE, help="gender bundle with an FP32 reference"
    )
    parser.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR_BUNDLE, help="detector bundle, likewise")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        if args.json is not None:  # before the run, which takes minutes
            writable_file(args.json)
        report = measure(args.data, args.split, args.limit, args.gender, args.detector)
    except (OutputPathError, DatasetError, BundleError) as exc:
        parser.error(str(exc))
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
