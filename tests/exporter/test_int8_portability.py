"""The shipped INT8 graphs give the same answers on every CPU the edge may run on.

x86 CPUs without VNNI sum pairs of uint8 × int8 products into a saturating int16 (``vpmaddubsw``); the
bundles therefore use 7-bit weights, and these tests check that property on the graphs themselves, then
run the parity probes on an emulated AVX2 CPU without VNNI (QEMU's EPYC-Rome model), where a full-range
INT8 graph is shown to fail the same probe.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from footfall.core.bundle import load_bundle
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE
from footfall.core.serving import probe_feed
from footfall.exporter.quantize import INT16_MAX, saturation_report

from tests.conftest import _require
from tests.int8_faults import rehash

SHIPPED = {"detector": DEFAULT_DETECTOR_BUNDLE, "gender": DEFAULT_GENDER_BUNDLE}
# An AVX2 CPU without any int8 dot product (AMD Zen 2): the kind on which full-range INT8 went wrong.
NO_VNNI_CPU = "EPYC-Rome"
PROBE_SCRIPT = """
import json, sys
from footfall.core.bundle import load_bundle, open_session
from footfall.core.serving import run_probe
results = {}
for name, path in json.loads(sys.argv[1]).items():
    bundle = load_bundle(path)
    result = run_probe(bundle, open_session(bundle, threads=1))
    results[name] = [result.error, result.tolerance]
print(json.dumps(results))
"""


@pytest.mark.parametrize("kind", SHIPPED)
def test_shipped_int8_weights_cannot_saturate_an_int16_pair_sum(kind: str) -> None:
    bundle = load_bundle(SHIPPED[kind])
    assert bundle.manifest.precision == "int8"
    report = saturation_report(bundle.model_path)
    assert report.int8_weights > 0
    assert report.largest_int8 <= 64, report
    assert 2 * 255 * report.largest_int8 <= INT16_MAX
    assert report.saturation_free


@pytest.mark.parametrize("kind", SHIPPED)
def test_shipped_fp32_reference_graphs_hold_no_subnormal_weights(kind: str) -> None:
    """The FP32 graph is what the edge serves when INT8 fails its probe: some x86 CPUs multiply by a subnormal
    weight very slowly (audience-v7's unflushed graph ran at 51 ms per face on an Intel Xeon, 3 ms flushed)."""
    import onnx
    from footfall.exporter.gender_export import flush_subnormal_initializers

    bundle = load_bundle(SHIPPED[kind])
    age = bundle.manifest.classifier.age if bundle.manifest.classifier else None
    graphs = [bundle.reference_model_path]
    if age is not None and age.gender_only_reference_model_file:
        graphs.append(bundle.path / age.gender_only_reference_model_file)
    for path in graphs:
        assert path is not None and path.is_file()
        # The exporter's own flush, on a copy in memory: it counts what it would set to zero.
        assert flush_subnormal_initializers(onnx.load(path)) == 0, f"{path.name} holds subnormal weights"


def full_range_int8(bundle_path: Path, target: Path) -> Path:
    """The gender bundle re-quantized the old way (full-range int8 weights), calibrated on its probe."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    shutil.copytree(bundle_path, target)
    bundle = load_bundle(target)
    with np.load(bundle.probe_path) as data:
        feed = probe_feed(bundle.manifest.classifier, data["inputs"])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"chips": feed}])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(
        str(bundle.reference_model_path),
        str(target / "model.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv"],
        extra_options={"WeightSymmetric": True},
    )
    rehash(target)
    assert saturation_report(target / "model.onnx").largest_int8 > 64
    return target


def probe_errors(bundles: dict[str, Path], *, emulate: str | None) -> dict:
    command = [sys.executable, "-c", PROBE_SCRIPT, json.dumps({k: str(v) for k, v in bundles.items()})]
    if emulate:
        command = ["qemu-x86_64", "-cpu", emulate, *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_probes_pass_on_a_cpu_without_vnni_where_full_range_int8_fails(tmp_path: Path) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the emulated CPU is an x86-64 one; this machine runs another architecture")
    if shutil.which("qemu-x86_64") is None:
        _require("qemu-x86_64 not found (Debian package qemu-user): it emulates a CPU without VNNI")
    bundles = {**SHIPPED, "full-range": full_range_int8(DEFAULT_GENDER_BUNDLE, tmp_path / "full-range")}
    # (QEMU's user mode shows the host's /proc/cpuinfo, but onnxruntime picks kernels by CPUID, emulated.)
    emulated = probe_errors(bundles, emulate=NO_VNNI_CPU)
    for kind in SHIPPED:
        error, tolerance = emulated[kind]
        assert error <= tolerance, (kind, error, tolerance)
    # The negative control: the old format saturates on that CPU, far outside the same tolerance.
    error, tolerance = emulated["full-range"]
    assert error > 2 * tolerance, (error, tolerance)
    # And the 7-bit graphs compute the same integers there as here: identical probe errors.
    native = probe_errors(SHIPPED, emulate=None)
    for kind in SHIPPED:
        assert emulated[kind][0] == pytest.approx(native[kind][0], abs=1e-6), kind
