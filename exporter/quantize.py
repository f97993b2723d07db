"""Static INT8 quantization (QDQ, per-channel weights) of an FP32 ONNX graph with onnxruntime, in a format
whose results do not depend on the CPU that runs it.

Why 7-bit weights: an x86 CPU without VNNI (AVX2, or AVX-512 without VNNI) multiplies uint8 activations by
int8 weights with ``vpmaddubsw``, which adds each *pair* of products into a saturating int16. Two products
of 255 × 127 sum to 64,770 and clip at 32,767, so full-range int8 weights give different, wrong answers on
such CPUs (measured: the CenterFace detector's top score on a frame fell from 0.92 to 0.78 on an emulated
EPYC-Rome). With weights in [−64, 64] the largest pair is 2 × 255 × 64 = 32,640, which fits: no pair can
overflow, whatever kernel the CPU picks (VNNI and ARM dot products accumulate in int32 and never could).
This is onnxruntime's own ``reduce_range`` remedy; :func:`saturation_report` checks the property on the
written graph, so it is a fact about the file rather than about the exporting machine.

Activations are calibrated on real inputs; the caller supplies them as batches of the graph's input.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

# The int16 pair sum that must not overflow: uint8 activation × int8 weight, two products per lane.
INT16_MAX = 32767
UINT8_MAX = 255
# Weight formats tried by the exporters, in order of preference. "s7": uint8 activations, int8 weights
# limited to 7 bits (no pair can saturate: a property of the graph). "u8u8": uint8 weights, which MLAS
# never multiplies with vpmaddubsw (correct on every CPU, but by the kernel's choice, and slower on x86).
WeightFormat = Literal["s7", "u8u8"]
WEIGHT_FORMATS: tuple[WeightFormat, ...] = ("s7", "u8u8")
FORMAT_DESCRIPTIONS = {
    "s7": "uint8 activations × 7-bit int8 weights (reduce_range): every int16 pair sum fits, on any CPU",
    "u8u8": "uint8 activations × uint8 weights: no vpmaddubsw pair sums, on any CPU",
}


def quantize_qdq(
    fp32_path: Path,
    int8_path: Path,
    input_name: str,
    calibration: Iterable[np.ndarray],
    *,
    weight_format: WeightFormat = "s7",
    calibrate_method: str = "MinMax",
    exclude_op_types: tuple[str, ...] = (),
    float_outputs: tuple[str, ...] = (),
    symbolic_shapes: bool = True,
) -> None:
    """Writes an INT8 QDQ model: per-channel weights in ``weight_format``, uint8 activations calibrated on
    ``calibration``. Operators of ``exclude_op_types``, and those whose output tensor is named in
    ``float_outputs``, stay in FP32."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class BatchReader(CalibrationDataReader):
        def __init__(self, batches: Iterable[np.ndarray]):
            self._batches: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    fp32_path, int8_path = fp32_path.resolve(), int8_path.resolve()
    with tempfile.TemporaryDirectory(prefix="footfall-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference and graph clean-up first, as onnxruntime recommends before static quantization.
        # onnxruntime's symbolic shape inference gives up on some dynamic graphs (CenterFace's ConvTranspose
        # upsampling), leaving a temp model in the working directory: such graphs pass symbolic_shapes=False
        # and get ONNX's own shape inference, and the step runs inside the scratch folder regardless.
        with contextlib.chdir(scratch):
            try:
                quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=not symbolic_shapes)
            except Exception:
                if not symbolic_shapes:
                    raise
                quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        import onnx

        model = onnx.load(str(prepared))
        # Exclusion works by node name; some exporters leave names empty.
        for index, node in enumerate(model.graph.node):
            node.name = node.name or f"{node.op_type}_{index}"
        onnx.save(model, str(prepared))
        op_types = {node.op_type for node in model.graph.node}
        kept_float = [node.name for node in model.graph.node if node.output[0] in float_outputs]
        if len(kept_float) != len(float_outputs):
            raise ValueError(f"float_outputs {float_outputs} name {len(kept_float)} operators of the graph")
        seven_bit = weight_format == "s7"
        quantize_static(
            str(prepared),
            str(int8_path),
            BatchReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=seven_bit,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8 if seven_bit else QuantType.QUInt8,
            calibrate_method=getattr(CalibrationMethod, calibrate_method),
            op_types_to_quantize=sorted(op_types - set(exclude_op_types)),
            nodes_to_exclude=kept_float,
            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": seven_bit},
        )
    if weight_format == "s7":
        report = saturation_report(int8_path)
        if not report.saturation_free:
            raise RuntimeError(f"{int8_path}: 7-bit quantization left weights that can saturate: {report.worst}")


@dataclass(frozen=True)
class SaturationReport:
    """The quantized weight tensors of a graph and whether any uint8 × int8 pair sum can leave int16."""

    int8_weights: int  # int8 weight tensors (those multiplied with vpmaddubsw on x86 without VNNI)
    uint8_weights: int  # uint8 weight tensors (U8U8 kernels; no int16 pair sums)
    largest_int8: int  # the largest |q| of any int8 weight
    worst: str  # the tensor holding it

    @property
    def worst_pair_sum(self) -> int:
        return 2 * UINT8_MAX * self.largest_int8

    @property
    def saturation_free(self) -> bool:
        return self.worst_pair_sum <= INT16_MAX

    def as_dict(self) -> dict[str, int | str | bool]:
        return {
            "int8_weight_tensors": self.int8_weights,
            "uint8_weight_tensors": self.uint8_weights,
            "largest_abs_int8_weight": self.largest_int8,
            "worst_int16_pair_sum": self.worst_pair_sum,
            "int16_max": INT16_MAX,
            "saturation_free": self.saturation_free,
        }


def saturation_report(model_path: Path) -> SaturationReport:
    """Reads every constant weight that a DequantizeLinear turns back into floats and finds the largest
    int8 magnitude. Activations are uint8 (0..255), so a graph is saturation-free when two products of the
    largest weight fit in an int16: 2 × 255 × max|q| ≤ 32,767, i.e. every int8 weight lies in [−64, 64]."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    int8_count = uint8_count = largest = 0
    worst = ""
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers:
            continue
        values = numpy_helper.to_array(initializers[node.input[0]])
        if values.dtype == np.int8:
            int8_count += 1
            magnitude = int(np.abs(values.astype(np.int16)).max(initial=0))
            if magnitude > largest:
                largest, worst = magnitude, node.input[0]
        elif values.dtype == np.uint8:
            uint8_count += 1
    return SaturationReport(int8_count, uint8_count, largest, worst)
