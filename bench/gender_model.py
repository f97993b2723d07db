"""Benchmark of the default gender bundle: test-split accuracy targets and per-face latency.

Runs ``footfall evaluate``'s path (detector → shared crop → ONNX classifier) on the UTKFace and wiki test
splits, then times the classifier alone at batch 16. Prints each target with the measured figure.

Usage: .venv/bin/python bench/gender_model.py [--bundle models/bundles/audience-v7] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from footfall.core.paths import DEFAULT_GENDER_BUNDLE, data_dir
from footfall.models.card import TARGETS, meets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import CLASSIFIER_TASK, HelpFormatter, require_bundle, require_datasets, user_errors

DATASETS = {"utkface": "utkface-112", "wiki": "wiki-144"}


def latency_ms_per_face(bundle: Path, batch: int = 16, threads: int = 2, seconds: float = 3.0) -> float:
    from footfall.core.classifier import GenderClassifier

    classifier = GenderClassifier(bundle, threads=threads)
    size = classifier.spec.size
    chips = np.random.default_rng(0).integers(0, 255, (batch, size, size, 3), dtype=np.uint8)
    for _ in range(5):
        classifier.probabilities(chips)
    times = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(times) < 20:
        begin = time.perf_counter()
        classifier.probabilities(chips)
        times.append(time.perf_counter() - begin)
    return 1000.0 * float(np.median(times)) / batch


def main(argv: list[str] | None = None) -> None:
    from footfall.models.evaluate import EvaluationError, evaluate_bundle

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_GENDER_BUNDLE, help="gender bundle to measure")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"face datasets (default: FOOTFALL_DATA, else the shared data folder, now {data_dir()})",
    )
    args = parser.parse_args(argv)
    folder = args.data or data_dir()
    # Before the evaluation (minutes): a wrong bundle or data folder stops it in one line.
    require_bundle(parser, args.bundle, CLASSIFIER_TASK, "--bundle")
    require_datasets(parser, folder, DATASETS.values())
    with user_errors(parser, EvaluationError):
        reports = {
            name: evaluate_bundle(args.bundle, folder / f"{stem}.csv", folder / f"{stem}.zip", split="test")
            for name, stem in DATASETS.items()
        }
    print(f"bundle {args.bundle}")
    for target in TARGETS:
        value = reports[target["split"]]["metrics"].get(target["measure"])
        if value is None:
            continue
        verdict = (
            "aim met"
            if meets(value, target["op"], target["aim"])
            else "must met"
            if meets(value, target["op"], target["must"])
            else "MISSED"
        )
        bounds = f"must {target['op']} {target['must']}  aim {target['aim']}"
        print(f"{target['name']:40s} {value:8.4f}  {bounds}  {verdict}")
    for name, report in reports.items():
        m = report["metrics"]
        print(
            f"{name:8s} n={m['n']} acc={m['accuracy']:.4f} bal={m['balanced_accuracy']:.4f} "
            f"auc={m['roc_auc']:.4f} "
            f"ece={m['ece']:.4f} abstain={m['abstention_rate']:.4f} answered_acc={m['answered_accuracy']:.4f}"
        )
    model = args.bundle / "model.onnx"
    print(f"model size {model.stat().st_size / 1e6:.3f} MB (target ≤ 2 MB)")
    print(f"latency {latency_ms_per_face(args.bundle):.3f} ms per face at batch 16, 2 threads (target ≤ 1 ms)")


if __name__ == "__main__":
    main()
