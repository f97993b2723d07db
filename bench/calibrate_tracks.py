"""Per-label track thresholds for a gender bundle, chosen on walk-by clips of VALIDATION faces.

The edge decides once per person, from probabilities averaged over the person's best crops, and counts
``unknown`` below a confidence threshold. A zone's female share is counted from decided people only, so if
one gender goes ``unknown`` more often than the other, or is mistaken for the other more often (boys read
as girls), the share is biased. Camera crops are not the still photos the single-face threshold was chosen
on: small, blurred, lit differently, and each gender's answers shift differently. This tool renders
walk-by clips from val-split faces (edge/walkby.py; the edge benchmark measures on test-split faces),
runs the edge pipeline over them, and picks per-label thresholds under which each gender is counted at
the same rate as it truly occurs, leaving as many people ``unknown`` as the bundle's single threshold
does (``balanced_thresholds``).

It also counts how the per-person decision under those thresholds answers each true gender (female, male,
unknown per true label): the **decision rates** the server and ``footfall process`` correct female shares
with (footfall.core.quantify).

``--write`` stores both in the manifest of the ``--gender`` bundle, by default the shipped one
(``classifier.track_thresholds`` and ``classifier.decision_rates``); the edge uses the thresholds for its
per-person decision. Run it after ``footfall export``, which writes a manifest without them.

Example:
    .venv/bin/python bench/calibrate_tracks.py                      # print, default bundle, 96 clips
    .venv/bin/python bench/calibrate_tracks.py --write
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import edge_bench
from cli import (
    CLASSIFIER_TASK,
    DETECTOR_TASK,
    HelpFormatter,
    positive_int,
    require_bundle,
    require_datasets,
    require_writable_file,
    user_errors,
)
from footfall.core.bundle import load_bundle
from footfall.core.manifest import MANIFEST_FILE
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE, data_dir
from footfall.core.quantify import DecisionRates
from footfall.models.calibration import (
    abstention_by_label,
    balanced_thresholds,
    count_rates,
    threshold_decisions,
)


def share_report(probs: np.ndarray, truth: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> dict:
    """Abstention and count rate per true label, and the first label's share of decided vs true people."""
    best, decided = threshold_decisions(probs, thresholds)
    rates = abstention_by_label(probs, truth, thresholds)
    counted = count_rates(probs, truth, thresholds)
    share = float((best[decided] == 0).mean()) if decided.any() else float("nan")
    return {
        "thresholds": dict(zip(labels, (round(float(t), 3) for t in thresholds), strict=True)),
        "unknown_by_true_label": dict(zip(labels, (round(float(r), 3) for r in rates), strict=True)),
        "counted_per_true": dict(zip(labels, (round(float(r), 3) for r in counted), strict=True)),
        f"{labels[0]}_share_decided_pct": round(100 * share, 1),
        f"{labels[0]}_share_true_pct": round(100 * float((truth == 0).mean()), 1),
        "answered_accuracy": round(float((best[decided] == truth[decided]).mean()), 4),
        "unknown_pct": round(100 * float((~decided).mean()), 1),
    }


def decision_rates(
    probs: np.ndarray,
    truth: np.ndarray,
    thresholds: np.ndarray,
    labels: list[str],
    source: str,
    unclassified: dict[str, int] | None = None,
) -> DecisionRates:
    """People per true label and decision (a label, or unknown below its threshold). ``unclassified``: people
    per true label whose track never gave the classifier a usable crop; the edge decides them unknown, so
    they are part of the rates the corrected share splits unknowns with."""
    best, decided = threshold_decisions(probs, thresholds)
    decision = np.where(decided, best, len(labels))  # index len(labels): unknown
    names = [*labels, "unknown"]
    counts = {
        label: {name: int(((truth == t) & (decision == d)).sum()) for d, name in enumerate(names)}
        for t, label in enumerate(labels)
    }
    for label, people in (unclassified or {}).items():
        counts[label]["unknown"] += people
    return DecisionRates(counts=counts, source=source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=data_dir(),
        help="face datasets the clips' people come from (default: FOOTFALL_DATA, else ../shared/data; now %(default)s)",
    )
    parser.add_argument(
        "--gender",
        type=Path,
        default=DEFAULT_GENDER_BUNDLE,
        help="gender bundle to calibrate (and, with --write, to change)",
    )
    parser.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR_BUNDLE, help="face-detector bundle")
    # 96 clips of 20: some 1,900 val people, so that a decision rate is known within about ±1.3 points (95 %);
    # 24 clips left it about ±2.8. About 40 minutes on two cores.
    parser.add_argument("--clips", type=positive_int, default=96, help="walk-by clips (96: about 40 min on 2 cores)")
    parser.add_argument("--people", type=positive_int, default=20, help="people per clip")
    parser.add_argument("--seed", type=int, default=900, help="clip seeds; keep them apart from the bench's")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the thresholds and decision rates into the --gender bundle's manifest: by default the shipped "
        "bundle's (give --gender a copy to leave it as it is)",
    )
    parser.add_argument(
        "--people-json",
        type=Path,
        help="also write each matched person's truth (gender, age) and the edge's answers (probabilities) here; "
        "derived from the datasets, so keep it out of the repository",
    )
    args = parser.parse_args(argv)
    args.split = "val"
    bundle = require_bundle(parser, args.gender, CLASSIFIER_TASK, "--gender")
    # Before the run: found at its end, a path that cannot be written would throw 40 minutes away.
    require_writable_file(parser, args.people_json, "--people-json")
    if args.write:
        require_writable_file(parser, bundle.path / MANIFEST_FILE, "--write: the bundle's manifest")
    require_bundle(parser, args.detector, DETECTOR_TASK, "--detector")
    require_datasets(parser, args.data)  # before the clips are made
    contract = bundle.manifest.classifier
    if contract is None or len(contract.labels) != 2:
        parser.error(f"{args.gender}: not a two-label classifier bundle")
    labels = list(contract.labels)

    folder = Path(tempfile.mkdtemp(prefix="footfall-calibrate-"))  # clips hold dataset faces: never kept
    with user_errors(parser):  # what the checks above cannot foresee (a graph this onnxruntime will not build)
        try:
            measured = edge_bench.accuracy(args, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.people_json:
        args.people_json.write_text(json.dumps(measured["decided_people"]))
    people = [p for p in measured["decided_people"] if p["probabilities"] is not None]
    unclassified: dict[str, int] = {}
    for person in measured["decided_people"]:
        if person["probabilities"] is None:
            unclassified[person["gender"]] = unclassified.get(person["gender"], 0) + 1
    probs = np.array([p["probabilities"] for p in people], float)
    truth = np.array([labels.index(p["gender"]) for p in people], int)

    single = np.full(2, contract.abstain_threshold)
    chosen = balanced_thresholds(probs, truth, contract.abstain_threshold)
    report = {
        "bundle": str(args.gender),
        "clips": args.clips,
        "seed": args.seed,
        "people_classified": len(people),
        "people_never_classified": unclassified,
        "track_thresholds_before": contract.track_thresholds,
        "single_threshold": share_report(probs, truth, single, labels),
        "balanced": share_report(probs, truth, chosen, labels),
    }
    rates = decision_rates(
        probs,
        truth,
        chosen,
        labels,
        f"{args.clips} walk-by clips x {args.people} people of val-split faces (seed {args.seed}), edge pipeline "
        f"with {load_bundle(args.detector).manifest.name} {load_bundle(args.detector).manifest.precision}; "
        f"bench/calibrate_tracks.py",
        unclassified,
    )
    report["decision_rates"] = rates.counts
    report["recall"] = {label: round(value, 4) for label, value in rates.recall().items()}
    for name in (
        "track_thresholds_before",
        "single_threshold",
        "balanced",
        "people_never_classified",
        "decision_rates",
        "recall",
    ):
        print(f"{name}: {json.dumps(report[name])}")
    if args.write:
        from footfall.exporter.bundle_writer import write_manifest

        classifier = contract.model_copy(
            update={
                "track_thresholds": {label: round(float(t), 3) for label, t in zip(labels, chosen, strict=True)},
                "decision_rates": rates,
            }
        )
        write_manifest(bundle.path, bundle.manifest.model_copy(update={"classifier": classifier}))
        load_bundle(bundle.path)  # the edge's own checks must pass on what was written
        print(
            f"wrote track thresholds {classifier.track_thresholds} and decision rates to {bundle.path}", file=sys.stderr
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
