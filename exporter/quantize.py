"""Static INT8 quantization (QDQ, per-channel weights) of an FP32 ONNX graph with onnxruntime.

Activations are calibrated on real inputs; the caller supplies them as batches of the graph's input.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np


def quantize_qdq(
    fp32_path: Path,
    int8_path: Path,
    input_name: str,
    calibration: Iterable[np.ndarray],
    *,
    calibrate_method: str = "MinMax",
    exclude_op_types: tuple[str, ...] = (),
    symbolic_shapes: bool = True,
) -> None:
    """Writes an INT8 QDQ model: per-channel int8 weights, uint8 activations calibrated on ``calibration``."""
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
        op_types = {node.op_type for node in model.graph.node}
        quantize_static(
            str(prepared),
            str(int8_path),
            BatchReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, calibrate_method),
            op_types_to_quantize=sorted(op_types - set(exclude_op_types)),
            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": True},
        )
