"""Broken INT8 graphs for tests: what a CPU whose integer kernels go wrong would serve.

A real CPU that saturates cannot be ordered here, so the faults are put into the graph itself: the bundle
is copied, its INT8 model altered, and the manifest's hashes rewritten so that the bundle still loads and
only the parity probe can tell.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from footfall.core.manifest import MANIFEST_FILE, file_entry


def rehash(bundle: Path) -> None:
    """Rewrites the manifest's file entries after a file was changed on purpose."""
    path = bundle / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    for name in manifest["files"]:
        manifest["files"][name] = json.loads(file_entry(bundle / name).model_dump_json())
    path.write_text(json.dumps(manifest, indent=2))


def _int8_graphs_altered(bundle: Path, target: Path, pruned_only: bool, alter: Callable[[Any, str], None]) -> Path:
    """A copy of ``bundle`` whose INT8 graphs (the model, and its gender-only copy where the bundle has one; with
    ``pruned_only`` that copy alone) ``alter`` changed in place (given the ONNX model and its file name), with the
    manifest's hashes rewritten."""
    import onnx

    shutil.copytree(bundle, target)
    age = (json.loads((target / MANIFEST_FILE).read_text()).get("classifier") or {}).get("age") or {}
    names = [age.get("gender_only_model_file")] if pruned_only else ["model.onnx", age.get("gender_only_model_file")]
    for name in names:
        if name is None:
            continue
        model = onnx.load(str(target / name))
        alter(model, name)
        onnx.save(model, str(target / name))
    rehash(target)
    return target


def broken_int8_copy(bundle: Path, target: Path, factor: float = 6.0, *, pruned_only: bool = False) -> Path:
    """A copy of ``bundle`` whose INT8 graphs (see :func:`_int8_graphs_altered`) multiply every weight scale of their
    first quantized convolutions by ``factor``: activations then clip the way saturated int16 sums clip them."""
    import onnx
    from onnx import numpy_helper

    def scale_up(model: Any, name: str) -> None:
        initializers = {tensor.name: tensor for tensor in model.graph.initializer}
        changed = 0
        for node in model.graph.node:
            weight = initializers.get(node.input[0])
            if node.op_type != "DequantizeLinear" or weight is None or weight.data_type != onnx.TensorProto.INT8:
                continue
            scale = initializers[node.input[1]]
            scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(factor), scale.name))
            changed += 1
            if changed == 3:
                break
        assert changed, f"{bundle}: no int8 weight to break in {name}"

    return _int8_graphs_altered(bundle, target, pruned_only, scale_up)


def corrupt_model_copy(bundle: Path, target: Path, *, gender_only: bool = False) -> Path:
    """A copy of ``bundle`` whose served graph (``gender_only``: its graph pruned to the gender output) is cut in
    half, with the manifest's sizes and hashes rewritten to match: the bundle's checks all pass, and only opening
    the graph can tell."""
    shutil.copytree(bundle, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    name = manifest["classifier"]["age"]["gender_only_model_file"] if gender_only else manifest["model_file"]
    model = target / name
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    rehash(target)
    return target


def unloadable_int8_copy(bundle: Path, target: Path, *, pruned_only: bool = False) -> Path:
    """A copy of ``bundle`` whose INT8 graphs (see :func:`_int8_graphs_altered`) name an operator this onnxruntime does
    not have: one QuantizeLinear becomes 'QuantizeLinearV2', as a graph exported for a newer runtime would. The
    manifest's hashes are rewritten, so the bundle loads and only opening the graph fails."""

    def rename_one(model: Any, name: str) -> None:
        node = next((node for node in model.graph.node if node.op_type == "QuantizeLinear"), None)
        assert node is not None, f"{bundle}: no QuantizeLinear to rename in {name}"
        node.op_type = "QuantizeLinearV2"

    return _int8_graphs_altered(bundle, target, pruned_only, rename_one)
