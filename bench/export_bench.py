"""Latency of the shipped model bundles on this CPU: gender classifier per face at batch 1 and 16, face
detector per frame at 640×360 and 1280×720, INT8 (what ships) against the FP32 reference graph.

Candidates are timed interleaved, so a busy machine slows them alike. Target (issue 4): gender INT8
≤ 1 ms per face at batch 16 on a 2-core CPU.

    .venv/bin/python bench/export_bench.py                  # default bundles, 2 threads
    .venv/bin/python bench/export_bench.py --threads 1 --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from footfall.core.bundle import BundleError, load_bundle, open_session
from footfall.core.latency import interleaved_median_ms
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
from footfall.core.preprocess import normalise

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import CLASSIFIER_TASK, DETECTOR_TASK, HelpFormatter, require_bundle, require_datasets, thread_count

GENDER_TARGET_MS = 1.0


def gender_figures(bundle_dir: Path, threads: int) -> dict[str, dict[int, float]]:
    bundle = load_bundle(bundle_dir)
    if bundle.manifest.classifier is None:
        raise BundleError(f"{bundle_dir}: a {bundle.manifest.task} bundle, not a {CLASSIFIER_TASK} bundle")
    spec = bundle.manifest.classifier.preprocess
    sessions = {bundle.manifest.precision: open_session(bundle, threads=threads)}
    if bundle.reference_model_path is not None:
        sessions["fp32 (reference)"] = open_session(bundle, reference=True, threads=threads)
    chips = np.random.default_rng(0).integers(0, 256, (16, spec.size, spec.size, 3), dtype=np.uint8)
    tensor = normalise(chips, spec)
    name = bundle.manifest.input.name
    figures: dict[str, dict[int, float]] = {label: {} for label in sessions}
    for batch in (1, 16):
        feed = {name: np.ascontiguousarray(tensor[:batch])}
        timed = interleaved_median_ms(
            {label: (lambda s=s, f=feed: s.run(None, f)) for label, s in sessions.items()}, min_rounds=50
        )
        for label, value in timed.items():
            figures[label][batch] = value / batch
    return figures


def detector_figures(bundle_dir: Path, threads: int, data: Path | None) -> dict[str, dict[str, float]]:
    import cv2
    from footfall.core.detector import FaceDetector

    bundle = load_bundle(bundle_dir)
    detectors = {bundle.manifest.precision: FaceDetector(bundle, threads=threads)}
    if bundle.reference_model_path is not None:
        detectors["fp32 (reference)"] = FaceDetector(bundle, threads=threads, reference=True)
    if data is not None:
        from footfall.exporter.frames import mosaic_frames

        frame = next(mosaic_frames(data, "val", 1, seed=99))
    else:
        frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    figures: dict[str, dict[str, float]] = {label: {} for label in detectors}
    for width, height in ((640, 360), (1280, 720)):
        image = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        timed = interleaved_median_ms({label: (lambda d=d, i=image: d(i)) for label, d in detectors.items()})
        for label, value in timed.items():
            figures[label][f"{width}x{height}"] = value
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--gender", type=Path, default=DEFAULT_GENDER_BUNDLE, help="gender bundle folder")
    parser.add_argument("--detector", type=Path, default=DEFAULT_DETECTOR_BUNDLE, help="detector bundle folder")
    parser.add_argument("--threads", type=thread_count, default=2, help="onnxruntime intra-op threads, 1 to 64")
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("FOOTFALL_DATA"),
        help="dataset folder whose wiki-144 portraits make the detector's frame (default: FOOTFALL_DATA; unset: "
        "a frame of random pixels)",
    )
    args = parser.parse_args(argv)
    # Before any timing: a wrong bundle (a detector given for the classifier) or data folder stops it in one line.
    require_bundle(parser, args.gender, CLASSIFIER_TASK, "--gender")
    require_bundle(parser, args.detector, DETECTOR_TASK, "--detector")
    if args.data is not None:
        require_datasets(parser, args.data, ("wiki-144",))
    print(
        f"CPU cores: {os.cpu_count()}, onnxruntime threads: {args.threads}, "
        f"load average before: {os.getloadavg()[0]:.2f} (figures read high on a busy machine)"
    )
    status = 0
    try:
        gender = gender_figures(args.gender, args.threads)
    except BundleError as exc:
        print(f"gender bundle: {exc}", file=sys.stderr)
        status = 2
    else:
        print(f"\ngender classifier ({args.gender.name}): ms per face")
        print(f"  {'precision':18s} {'batch 1':>9s} {'batch 16':>9s}")
        for label, values in gender.items():
            print(f"  {label:18s} {values[1]:9.3f} {values[16]:9.3f}")
        shipped = next(iter(gender))
        verdict = "meets" if gender[shipped][16] <= GENDER_TARGET_MS else "MISSES"
        print(f"  shipped ({shipped}) at batch 16: {gender[shipped][16]:.3f} ms/face, {verdict} the ≤ 1 ms target")
    try:
        detector = detector_figures(args.detector, args.threads, args.data)
    except BundleError as exc:
        print(f"detector bundle: {exc}", file=sys.stderr)
        status = 2
    else:
        print(f"\nface detector ({args.detector.name}): ms per frame (pre-processing, network, decoding)")
        print(f"  {'precision':18s} {'640x360':>9s} {'1280x720':>9s}")
        for label, values in detector.items():
            print(f"  {label:18s} {values['640x360']:9.1f} {values['1280x720']:9.1f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
