"""Loading a model bundle: verify the manifest, hashes and tensor shapes, then open an onnxruntime session.

A corrupt or mismatched bundle is refused with a :class:`BundleError` that names what is wrong (which
file, which field, what was expected), so a camera box never runs a half-copied or mislabelled model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from footfall.core.manifest import MANIFEST_FILE, BundleManifest, TensorSpec, sha256_file
from pydantic import Field, TypeAdapter, ValidationError

if TYPE_CHECKING:
    import onnxruntime

# onnxruntime's type names for the manifest's dtypes.
ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)", "int8": "tensor(int8)"}


class BundleError(RuntimeError):
    """A bundle that cannot be used; the message says which file or field is at fault."""


class UnsupportedGraph(BundleError):
    """A graph that parses, but that this onnxruntime will not build: an operator, opset, IR version or kernel it
    lacks. Unlike a damaged file it depends on the box, as an INT8 graph that strays on its CPU does, so serving
    falls back to the bundle's FP32 reference for it (:func:`footfall.core.serving.open_served_session`)."""


# onnxruntime's refusals that say the file itself is bad, whichever box reads it.
_DAMAGED_FILE_ERRORS = frozenset({"InvalidProtobuf", "NoSuchFile"})


THREADS_ENV = "FOOTFALL_ORT_THREADS"
MAX_THREADS = 64  # the same bound as the edge config's detection.threads
_THREADS = TypeAdapter(Annotated[int, Field(ge=1, le=MAX_THREADS)])


def threads_from_environment() -> int | None:
    """``FOOTFALL_ORT_THREADS`` (onnxruntime's threads per session), or None when it is unset, empty or 0 (0 is
    onnxruntime's own word for "choose for me", and footfall's default was "0" until it was checked).

    Read when a session opens, so that a wrong value stops the command with one line naming it rather than an
    int() traceback ('abc') or a session that asks for 100,000 threads."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if text in ("", "0"):
        return None
    try:
        return _THREADS.validate_python(text)
    except ValidationError:
        raise BundleError(
            f"{THREADS_ENV}={text!r}: give a whole number of threads, 1 to {MAX_THREADS} (or 0: the cores, at most 4)"
        ) from None


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

    @property
    def has_gender_only_graphs(self) -> bool:
        """Whether the bundle carries its graphs pruned to the gender output (an age bundle exported with them)."""
        age = self.manifest.classifier.age if self.manifest.classifier else None
        return age is not None and age.gender_only_model_file is not None

    def graph_path(self, *, reference: bool = False, gender_only: bool = False) -> Path | None:
        """The graph to open: the model or its FP32 reference, whole or pruned to the gender output."""
        age = self.manifest.classifier.age if self.manifest.classifier else None
        if gender_only:
            if age is None or age.gender_only_model_file is None:
                return None
            name = age.gender_only_reference_model_file if reference else age.gender_only_model_file
            return self.path / name if name else None
        return self.reference_model_path if reference else self.model_path

    @property
    def probe_path(self) -> Path | None:
        return self.path / self.manifest.probe.file if self.manifest.probe else None


def read_manifest(path: Path) -> BundleManifest:
    manifest_path = path / MANIFEST_FILE
    try:
        found = manifest_path.is_file()
    except OSError as exc:  # a folder its user may not enter
        raise BundleError(f"{path}: cannot read the bundle folder ({exc.strerror or exc})") from None
    if not found:
        raise BundleError(f"{path}: no {MANIFEST_FILE}; is this a footfall model bundle?")
    try:
        data = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not readable JSON ({exc})") from None
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise BundleError(f"{manifest_path}: {fields}") from None


def _check_files(folder: Path, manifest: BundleManifest, verify_hashes: bool) -> None:
    age = manifest.classifier.age if manifest.classifier else None
    for role, name in (
        ("model file", manifest.model_file),
        ("reference model", manifest.reference_model_file),
        ("parity probe", manifest.probe.file if manifest.probe else None),
        ("gender-only model", age.gender_only_model_file if age else None),
        ("gender-only reference model", age.gender_only_reference_model_file if age else None),
    ):
        if name is not None and name not in manifest.files:
            raise BundleError(f"{folder}: {role} {name!r} is not listed in manifest 'files'")
    for name, entry in manifest.files.items():
        if name in ("", ".", "..", MANIFEST_FILE) or "/" in name or "\\" in name:
            raise BundleError(f"{folder}: manifest 'files' names {name!r}; only plain file names are allowed")
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{folder}: file {name!r} listed in the manifest is missing")
        size = file.stat().st_size
        if size != entry.bytes:
            hint = "truncated?" if size < entry.bytes else "appended to, or replaced by another file?"
            raise BundleError(f"{folder}: file {name!r} is {size} bytes, the manifest says {entry.bytes} ({hint})")
        try:
            digest = sha256_file(file) if verify_hashes else entry.sha256
        except OSError as exc:  # bundles copied by root, an agent running as a service user
            raise BundleError(
                f"{folder}: cannot read {name!r} ({exc.strerror or exc}); the user running footfall needs read "
                "access to every file of the bundle"
            ) from None
        if digest != entry.sha256:
            raise BundleError(f"{folder}: file {name!r} does not match its sha256 in the manifest (corrupt?)")


def _check_contract(folder: Path, manifest: BundleManifest) -> None:
    if (manifest.task == "gender-classification") != (manifest.classifier is not None):
        raise BundleError(f"{folder}: a gender-classification bundle needs a 'classifier' section, and only it")
    if (manifest.task == "face-detection") != (manifest.detector is not None):
        raise BundleError(f"{folder}: a face-detection bundle needs a 'detector' section, and only it")
    shape = manifest.input.shape
    if len(shape) != 4 or shape[1] != 3:
        raise BundleError(f"{folder}: input shape {shape} is not [batch, 3, height, width]")
    if manifest.classifier is not None:
        size = manifest.classifier.preprocess.size
        if shape[1:] != [3, size, size]:
            raise BundleError(
                f"{folder}: input shape {shape} does not match the pre-processing "
                f"chip size {size} (expected [batch, 3, {size}, {size}])"
            )
        labels = manifest.classifier.labels
        age = manifest.classifier.age
        if len(manifest.outputs) != (1 if age is None else 2) or manifest.outputs[0].shape[-1:] != [len(labels)]:
            heads = "" if age is None else f", then its age output {age.output!r} of shape [batch, {len(age.ages)}]"
            raise BundleError(
                f"{folder}: a classifier has one output of shape [batch, {len(labels)}] for labels {labels}{heads}; "
                f"the manifest lists {[o.shape for o in manifest.outputs]}"
            )
        if age is not None and age.gender_only_reference_model_file is not None and age.gender_only_model_file is None:
            raise BundleError(f"{folder}: a gender-only reference graph needs a gender-only model beside it")
        # The FP32 fallback of a gender-only box is the pruned reference: without it, a CPU that fails the INT8 probe
        # would leave that box nothing to serve, where the same box in full mode has the whole reference.
        if (
            age is not None
            and age.gender_only_model_file is not None
            and (age.gender_only_reference_model_file is None) != (manifest.reference_model_file is None)
        ):
            raise BundleError(
                f"{folder}: a bundle with gender-only graphs carries the pruned FP32 reference exactly when it "
                "carries the whole one (gender_only_reference_model_file and reference_model_file)"
            )
        if age is not None and (manifest.outputs[1].name, manifest.outputs[1].shape[-1:]) != (
            age.output,
            [len(age.ages)],
        ):
            raise BundleError(
                f"{folder}: the age output is {age.output!r} of shape [batch, {len(age.ages)}] (one logit per age), "
                f"the manifest lists {manifest.outputs[1].name!r} of shape {manifest.outputs[1].shape}"
            )
    if manifest.detector is not None and len(manifest.outputs) != 4:
        raise BundleError(f"{folder}: a CenterFace detector has 4 outputs, the manifest lists {len(manifest.outputs)}")


def load_bundle(path: str | Path, *, verify_hashes: bool = True) -> Bundle:
    """Reads and checks a bundle folder: manifest schema, every listed file present with its sha256, and
    the consistency of the task's contract with the declared tensors (graphs are checked on opening)."""
    folder = Path(path)
    try:
        found = folder.is_dir()
    except OSError as exc:
        raise BundleError(f"{folder}: cannot read the bundle folder ({exc.strerror or exc})") from None
    if not found:
        if folder.is_file():
            raise BundleError(f"{folder}: is a file, not a bundle folder (give the folder that holds manifest.json)")
        raise BundleError(f"{folder}: bundle folder not found")
    manifest = read_manifest(folder)
    _check_files(folder, manifest, verify_hashes)
    _check_contract(folder, manifest)
    return Bundle(folder, manifest)


def unlisted_files(bundle: Bundle) -> list[str]:
    """Plain files in the bundle's folder that its manifest does not list (nothing vouches for them; the edge
    never reads them)."""
    return sorted(
        path.name
        for path in bundle.path.iterdir()
        if path.is_file() and path.name != MANIFEST_FILE and path.name not in bundle.manifest.files
    )


def default_threads() -> int:
    """Threads per session when neither the command nor the config says: FOOTFALL_ORT_THREADS, else the cores,
    at most 4 (a camera box's cores also capture, track and publish)."""
    return threads_from_environment() or min(4, os.cpu_count() or 1)


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """onnxruntime settings for a small CPU box: few threads, full graph optimisation, no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    # Spinning threads burn a core while waiting for the next frame; a camera box has better uses for it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _check_tensor(model_path: Path, kind: str, actual: onnxruntime.NodeArg, expected: TensorSpec) -> None:
    """One graph input/output against its manifest entry: name, element type, rank and fixed sizes."""
    if actual.name != expected.name:
        raise BundleError(f"{model_path}: {kind} is named {actual.name!r}, the manifest says {expected.name!r}")
    if actual.type != ORT_TYPES[expected.dtype]:
        raise BundleError(f"{model_path}: {kind} {actual.name!r} is {actual.type}, the manifest says {expected.dtype}")
    if len(actual.shape) != len(expected.shape):
        raise BundleError(
            f"{model_path}: {kind} {actual.name!r} has rank {len(actual.shape)}, the manifest says {expected.shape}"
        )
    for axis, (got, want) in enumerate(zip(actual.shape, expected.shape, strict=True)):
        if isinstance(want, int) and isinstance(got, int) and got != want:
            raise BundleError(
                f"{model_path}: {kind} {actual.name!r} dimension {axis} is {got}, the manifest says {want} "
                f"(graph {list(actual.shape)} vs manifest {expected.shape})"
            )
        if isinstance(want, str) and isinstance(got, int) and axis == 0:
            raise BundleError(f"{model_path}: {kind} {actual.name!r} has a fixed batch of {got}; it must be dynamic")


def open_session(
    bundle: Bundle, *, reference: bool = False, gender_only: bool = False, threads: int | None = None
) -> onnxruntime.InferenceSession:
    """Opens the bundle's model (or its FP32 reference; ``gender_only``: pruned to the gender output) and checks
    its tensors against the manifest. Raises BundleError; :class:`UnsupportedGraph` where the graph parses but
    this onnxruntime will not build it."""
    import onnxruntime as ort

    model_path = bundle.graph_path(reference=reference, gender_only=gender_only)
    if model_path is None:
        graph = "reference (FP32) model" if reference else "model"
        raise BundleError(f"{bundle.path}: no {'gender-only ' if gender_only else ''}{graph} in this bundle")
    options = session_options(threads)  # before the try: a wrong FOOTFALL_ORT_THREADS is not the graph's fault
    try:
        # No fallback: it would only retry the same CPU provider, after printing a banner on stdout.
        session = ort.InferenceSession(
            str(model_path),
            sess_options=options,
            providers=["CPUExecutionProvider"],
            enable_fallback=0,
        )
    except Exception as exc:  # onnxruntime raises its own exception types for malformed graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = type(exc)
        runtime_refused = kind.__module__.startswith("onnxruntime") and kind.__name__ not in _DAMAGED_FILE_ERRORS
        raise (UnsupportedGraph if runtime_refused else BundleError)(
            f"{model_path}: onnxruntime cannot load it ({first})"
        ) from None
    manifest = bundle.manifest
    expected_outputs = manifest.outputs[:1] if gender_only else manifest.outputs
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise BundleError(f"{model_path}: expected one input, the graph has {len(inputs)}")
    _check_tensor(model_path, "input", inputs[0], manifest.input)
    if len(outputs) != len(expected_outputs):
        raise BundleError(
            f"{model_path}: the graph has {len(outputs)} outputs, the manifest lists {len(expected_outputs)}"
        )
    for actual, expected in zip(outputs, expected_outputs, strict=True):
        _check_tensor(model_path, "output", actual, expected)
    return session


def check_every_graph(bundle: Bundle, *, threads: int | None = None) -> None:
    """Opens every graph the bundle carries (the model, its FP32 reference, and both pruned to the gender output
    where it has them) and checks each against the manifest: raises BundleError on the first that fails."""
    for gender_only in (False, True) if bundle.has_gender_only_graphs else (False,):
        open_session(bundle, gender_only=gender_only, threads=threads)
        if bundle.reference_model_path is not None:
            open_session(bundle, reference=True, gender_only=gender_only, threads=threads)
