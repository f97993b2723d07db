"""Loading a model bundle: verify the manifest, hashes and tensor shapes, then open an onnxruntime session.

A corrupt or mismatched bundle is refused with a :class:`BundleError` that names what is wrong, so a
camera box never runs a half-copied model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from footfall.core.manifest import MANIFEST_FILE, BundleManifest, sha256_file

if TYPE_CHECKING:
    import onnxruntime


class BundleError(RuntimeError):
    """A bundle that cannot be used; the message says which file or field is at fault."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: BundleManifest

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model_file

    @property
    def reference_model_path(self) -> Path | None:
        name = self.manifest.reference_model_file
        return self.path / name if name else None


def read_manifest(path: Path) -> BundleManifest:
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST_FILE}; is this a footfall model bundle?")
    try:
        data = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not readable JSON ({exc})") from None
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg']}" for err in exc.errors()
        )
        raise BundleError(f"{manifest_path}: {fields}") from None


def load_bundle(path: str | Path, *, verify_hashes: bool = True) -> Bundle:
    """Reads and checks a bundle folder: manifest schema, every listed file present with its sha256."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: bundle folder not found")
    manifest = read_manifest(folder)
    if manifest.model_file not in manifest.files:
        raise BundleError(f"{folder}: model file {manifest.model_file!r} is not listed in manifest 'files'")
    for name, entry in manifest.files.items():
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{folder}: file {name!r} listed in the manifest is missing")
        if file.stat().st_size != entry.bytes:
            raise BundleError(
                f"{folder}: file {name!r} is {file.stat().st_size} bytes, the manifest says {entry.bytes}"
            )
        if verify_hashes and sha256_file(file) != entry.sha256:
            raise BundleError(f"{folder}: file {name!r} does not match its sha256 in the manifest (corrupt?)")
    if (manifest.task == "gender-classification") != (manifest.classifier is not None):
        raise BundleError(f"{folder}: a gender-classification bundle needs a 'classifier' section, and only it")
    if (manifest.task == "face-detection") != (manifest.detector is not None):
        raise BundleError(f"{folder}: a face-detection bundle needs a 'detector' section, and only it")
    if manifest.classifier is not None:
        size = manifest.classifier.preprocess.size
        if manifest.input.shape[1:] != [3, size, size]:
            raise BundleError(
                f"{folder}: input shape {manifest.input.shape} does not match the pre-processing "
                f"chip size {size} (expected [batch, 3, {size}, {size}])"
            )
    return Bundle(folder, manifest)


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """onnxruntime settings for a small CPU box: few threads, full graph optimisation, no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or int(os.environ.get("FOOTFALL_ORT_THREADS", "0")) or min(
        4, os.cpu_count() or 1
    )
    options.inter_op_num_threads = 1
    # Spinning threads burn a core while waiting for the next frame; a camera box has better uses for it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def open_session(
    bundle: Bundle, *, reference: bool = False, threads: int | None = None
) -> onnxruntime.InferenceSession:
    """Opens the bundle's model (or its FP32 reference) and checks its input against the manifest."""
    import onnxruntime as ort

    model_path = bundle.reference_model_path if reference else bundle.model_path
    if model_path is None:
        raise BundleError(f"{bundle.path}: no reference (FP32) model in this bundle")
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for malformed graphs
        raise BundleError(f"{model_path}: onnxruntime cannot load it ({exc})") from None
    expected = bundle.manifest.input
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise BundleError(f"{model_path}: expected one input, the graph has {len(inputs)}")
    actual = inputs[0]
    if actual.name != expected.name:
        raise BundleError(f"{model_path}: input is named {actual.name!r}, the manifest says {expected.name!r}")
    if len(actual.shape) != len(expected.shape):
        raise BundleError(f"{model_path}: input rank {len(actual.shape)}, the manifest says {expected.shape}")
    for axis, (got, want) in enumerate(zip(actual.shape, expected.shape, strict=True)):
        if isinstance(want, int) and isinstance(got, int) and got != want:
            raise BundleError(
                f"{model_path}: input dimension {axis} is {got}, the manifest says {want} "
                f"(input {list(actual.shape)} vs manifest {expected.shape})"
            )
    return session
