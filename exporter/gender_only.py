"""The gender-only graphs of an age bundle: its graphs pruned to the gender output.

A site that estimates no age ('gender-only') must not run the age head at all, and onnxruntime runs every
node of a graph whichever outputs are read. So an age bundle carries a copy of each graph with the age head
cut away: the same nodes up to the gender output, and nothing else, hence the same gender answers.
"""

from __future__ import annotations

from pathlib import Path

from footfall.core.bundle import Bundle, BundleError, load_bundle
from footfall.core.manifest import BundleManifest

GENDER_ONLY_FILE = "model-gender.onnx"
GENDER_ONLY_REFERENCE_FILE = "model-gender-fp32.onnx"


def prune_to_gender(source: Path, target: Path, gender_output: str) -> None:
    """Writes ``source`` cut down to the nodes ``gender_output`` depends on (its only output)."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(source))
    inputs = [value.name for value in model.graph.input]
    pruned = Extractor(model).extract_model(inputs, [gender_output])
    # Extractor builds a fresh graph: keep the source's opsets, IR version and producer as they were.
    pruned.ir_version, pruned.producer_name, pruned.producer_version = (
        model.ir_version,
        model.producer_name,
        model.producer_version,
    )
    del pruned.opset_import[:]
    pruned.opset_import.extend(model.opset_import)
    onnx.checker.check_model(pruned)
    onnx.save(pruned, str(target))


def write_gender_only_graphs(folder: Path, manifest: BundleManifest) -> BundleManifest:
    """Writes the pruned copy of the bundle's model (and FP32 reference) into ``folder``; returns the manifest
    naming them. A bundle without an age head needs none and is returned as it is."""
    contract = manifest.classifier
    if contract is None or contract.age is None:
        return manifest
    gender_output = manifest.outputs[0].name
    prune_to_gender(folder / manifest.model_file, folder / GENDER_ONLY_FILE, gender_output)
    reference = None
    if manifest.reference_model_file is not None:
        prune_to_gender(folder / manifest.reference_model_file, folder / GENDER_ONLY_REFERENCE_FILE, gender_output)
        reference = GENDER_ONLY_REFERENCE_FILE
    age = contract.age.model_copy(
        update={"gender_only_model_file": GENDER_ONLY_FILE, "gender_only_reference_model_file": reference}
    )
    return manifest.model_copy(update={"classifier": contract.model_copy(update={"age": age})})


def add_gender_only_graphs(path: Path) -> Bundle:
    """Adds the gender-only graphs to a bundle exported before they existed (in place; every other file is
    left as it is), re-hashes its manifest and checks the result as the edge would."""
    from footfall.core.bundle import open_session
    from footfall.exporter.bundle_writer import write_manifest

    bundle = load_bundle(path)
    if bundle.manifest.classifier is None or bundle.manifest.classifier.age is None:
        raise BundleError(f"{path}: not a classifier bundle with an age head; it needs no gender-only graphs")
    manifest = write_gender_only_graphs(bundle.path, bundle.manifest)
    write_manifest(bundle.path, manifest)
    bundle = load_bundle(path)
    open_session(bundle, gender_only=True, threads=1)
    if bundle.reference_model_path is not None:
        open_session(bundle, reference=True, gender_only=True, threads=1)
    return bundle
