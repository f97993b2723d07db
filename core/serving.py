"""Serving a bundle on the CPU at hand: run its parity probe, and fall back to FP32 when INT8 strays.

An INT8 graph is only as good as the integer kernels of the CPU that runs it (see
:mod:`footfall.exporter.quantize`). Each INT8 bundle carries a small probe (inputs made from
public-domain images, the FP32 graph's outputs on them, a tolerance); before serving, the edge runs the
INT8 graph on the probe here. Outside tolerance it logs one error, serves the bundle's FP32 reference
graph instead, and says so in its heartbeat (:class:`~footfall.core.wire.ModelServing`). An INT8 graph that this
box's onnxruntime will not even build (an operator, opset or kernel it lacks) is served the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict, Unpack

import numpy as np
from footfall.core.bundle import Bundle, BundleError, UnsupportedGraph, open_session
from footfall.core.cpu import describe_cpu
from footfall.core.logs import log_event
from footfall.core.manifest import ClassifierContract
from footfall.core.preprocess import normalise
from footfall.core.wire import ModelServing

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger("footfall.core.serving")


@dataclass(frozen=True)
class ProbeResult:
    error: float  # largest |graph − FP32 reference| over the probe's values
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance


def probe_feed(classifier: ClassifierContract | None, inputs: np.ndarray) -> np.ndarray:
    """The network input for the probe's stored uint8 inputs: raw pixels (NCHW, the detector's colour
    order) for a detector, chips (NHWC) through the shared normalisation for a classifier."""
    if classifier is not None:
        return normalise(inputs, classifier.preprocess)
    return np.ascontiguousarray(inputs, dtype=np.float32)


def probe_measure(classifier: ClassifierContract | None, outputs: list[np.ndarray]) -> np.ndarray:
    """What the probe compares: the face heatmap (a detector), or the calibrated class probabilities."""
    if classifier is not None:
        from footfall.core.classifier import softmax

        return softmax(np.asarray(outputs[0], dtype=np.float64), classifier.temperature)
    return np.asarray(outputs[0], dtype=np.float64)


def run_probe(bundle: Bundle, session: onnxruntime.InferenceSession) -> ProbeResult:
    """Runs ``session`` on the bundle's probe and compares with the stored FP32 outputs."""
    probe, path = bundle.manifest.probe, bundle.probe_path
    if probe is None or path is None:
        raise BundleError(f"{bundle.path}: this bundle carries no parity probe")
    try:
        with np.load(path, allow_pickle=False) as data:
            inputs, reference = data["inputs"], data["reference"]
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable parity probe ({exc})") from None
    if inputs.dtype != np.uint8 or reference.dtype.kind != "f":
        raise BundleError(
            f"{path}: probe inputs must be uint8 and its reference floats, not {inputs.dtype} and {reference.dtype}"
        )
    name = session.get_inputs()[0].name
    classifier = bundle.manifest.classifier
    try:
        outputs = session.run(None, {name: probe_feed(classifier, inputs)})
    except Exception as exc:  # onnxruntime's own exception types: inputs of a shape the graph cannot take
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"{path}: the graph cannot run the probe's inputs {inputs.shape} ({first})") from None
    measured = probe_measure(classifier, outputs)
    if measured.shape != reference.shape:
        raise BundleError(f"{path}: probe reference is {reference.shape}, the graph gave {measured.shape}")
    error = float(np.abs(measured - reference).max()) if measured.size else 0.0
    return ProbeResult(error if np.isfinite(error) else float("inf"), probe.tolerance)


class _Decision(TypedDict):
    """What :func:`_serving` adds to the bundle's name, version and task."""

    precision: Literal["int8", "fp32"]
    parity: Literal["passed", "failed", "not-checked"]
    probe_error: NotRequired[float | None]
    tolerance: NotRequired[float | None]
    reason: NotRequired[str | None]


def _serving(bundle: Bundle, **fields: Unpack[_Decision]) -> ModelServing:
    manifest = bundle.manifest
    rates = manifest.classifier.decision_rates if manifest.classifier is not None else None
    return ModelServing(
        bundle=manifest.name[:64], version=manifest.version[:32], task=manifest.task, decision_rates=rates, **fields
    )


def _shortened(text: str, limit: int = 200) -> str:
    """``text``'s first line, at most ``limit`` characters: its start and its end where longer, since onnxruntime
    names the cause last (after the graph's path and the node at fault)."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) <= limit:
        return first
    head = (limit - 3) * 2 // 5
    return f"{first[:head]} … {first[head + 3 - limit :]}"


def open_served_session(
    bundle: Bundle, *, gender_only: bool = False, threads: int | None = None
) -> tuple[onnxruntime.InferenceSession, ModelServing]:
    """The session the edge serves from, after the parity self-check, and what was decided. ``gender_only``
    serves the graphs pruned to the gender output; the probe compares that output alone, so it applies as is."""
    manifest = bundle.manifest
    has_reference = bundle.graph_path(reference=True, gender_only=gender_only) is not None
    tolerance = manifest.probe.tolerance if manifest.probe is not None else None
    try:
        session = open_session(bundle, gender_only=gender_only, threads=threads)
    except UnsupportedGraph as exc:
        # An operator, opset or kernel this onnxruntime lacks depends on the box, as an INT8 graph that strays on
        # its CPU does: the FP32 reference, made of plain float operators, is served instead. (A file that does not
        # parse, or a graph that does not match its manifest, is damaged on every box: refused, as before.)
        if manifest.precision != "int8" or not has_reference:
            raise
        graph = bundle.graph_path(gender_only=gender_only)
        # The graph by its file name (the status names the bundle): a long folder left no room for the cause.
        reason = _shortened(str(exc).replace(str(graph), graph.name) if graph is not None else str(exc))
        message = "onnxruntime here cannot load the INT8 graph; serving the FP32 reference instead"
        return _serve_reference(bundle, message, reason, None, tolerance, gender_only=gender_only, threads=threads)
    if manifest.precision != "int8" or manifest.probe is None:
        reason = "FP32 bundle" if manifest.precision == "fp32" else "bundle carries no parity probe"
        return session, _serving(bundle, precision=manifest.precision, parity="not-checked", reason=reason)
    failure: str | None
    try:
        result = run_probe(bundle, session)
    except Exception as exc:  # a graph that cannot even run the probe must not be served either
        result, failure = ProbeResult(float("inf"), manifest.probe.tolerance), str(exc).splitlines()[0][:200]
    else:
        failure = None
    if result.passed:
        return session, _serving(
            bundle,
            precision="int8",
            parity="passed",
            probe_error=round(result.error, 6),
            tolerance=result.tolerance,
            reason="INT8 within its parity tolerance on this CPU",
        )
    if not has_reference:
        raise BundleError(
            f"{bundle.path}: INT8 graph fails its parity probe on this CPU and the bundle has no FP32 reference"
        )
    reason = failure or f"INT8 probe error {result.error:.4f} > tolerance {result.tolerance:.4f} on this CPU"
    message = "INT8 graph fails its parity check on this CPU; serving the FP32 reference instead"
    probe_error = round(result.error, 6) if np.isfinite(result.error) else None
    return _serve_reference(bundle, message, reason, probe_error, tolerance, gender_only=gender_only, threads=threads)


def _serve_reference(
    bundle: Bundle,
    message: str,
    reason: str,
    probe_error: float | None,
    tolerance: float | None,
    *,
    gender_only: bool,
    threads: int | None,
) -> tuple[onnxruntime.InferenceSession, ModelServing]:
    """The FP32 reference in place of an INT8 graph that cannot be served here: one error logged, with why."""
    log_event(logger, logging.ERROR, message, bundle=bundle.manifest.name, reason=reason, cpu=describe_cpu())
    reference = open_session(bundle, reference=True, gender_only=gender_only, threads=threads)
    return reference, _serving(
        bundle, precision="fp32", parity="failed", probe_error=probe_error, tolerance=tolerance, reason=reason[:300]
    )


def open_model(
    bundle: Bundle,
    *,
    reference: bool = False,
    self_check: bool = False,
    gender_only: bool = False,
    threads: int | None = None,
) -> tuple[onnxruntime.InferenceSession, ModelServing]:
    """The session a detector or classifier runs: the FP32 reference when asked for, the checked graph for
    serving, or the bundle's own graph unchecked (exports, evaluation, tests); ``gender_only``: the graphs
    pruned to the gender output (a classifier bundle that has them)."""
    if self_check and not reference:
        return open_served_session(bundle, gender_only=gender_only, threads=threads)
    session = open_session(bundle, reference=reference, gender_only=gender_only, threads=threads)
    if reference:
        return session, _serving(bundle, precision="fp32", parity="not-checked", reason="FP32 reference asked for")
    return session, _serving(
        bundle, precision=bundle.manifest.precision, parity="not-checked", reason="served without a parity check"
    )
