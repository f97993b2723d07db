"""The gender-only graphs of an age bundle: its graphs pruned to the gender output.

A site that estimates no age ('gender-only') must not run the age head at all, and onnxruntime runs every
node of a graph whichever outputs are read. So an age bundle carries a copy of each graph with the age head
cut away: the same nodes up to the gender output, and nothing else, hence the same gender answers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from footfall.core.bundle import Bundle, BundleError, load_bundle, unlisted_files
from footfall.core.manifest import BundleManifest

GENDER_ONLY_FILE = "model-gender.onnx"
GENDER_ONLY_REFERENCE_FILE = "model-gender-fp32.onnx"


def prune_to_gender(source: Path, target: Path, gender_output: str) -> None:
    """Writes ``source`` cut down to the nodes ``gender_output`` depends on (its only output)."""
    import onnx
    from onnx.utils import Extractor

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not an ONNX graph
        raise BundleError(f"{source}: not a readable ONNX graph ({type(exc).__name__})") from exc
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
    """Adds the gender-only graphs to a bundle exported before they existed (every other file left as it is) and
    re-hashes its manifest. The result is built in a staging copy and checked as the edge would open it; only
    then is it swapped in, so a failure leaves the bundle as it was. The swap replaces the folder (it needs write
    access to the folder above it); a staging folder (``.NAME.staging-*``) left by a killed run can be deleted."""
    from footfall.core.bundle import check_every_graph
    from footfall.exporter.bundle_writer import staged_bundle, write_manifest

    given, path = path, path.resolve()  # the folder is replaced: a relative path such as '.' would name the one removed
    bundle = load_bundle(path)
    if bundle.manifest.classifier is None or bundle.manifest.classifier.age is None:
        raise BundleError(f"{path}: not a classifier bundle with an age head; it needs no gender-only graphs")
    unlisted = unlisted_files(bundle)
    if unlisted:
        # Re-hashing would vouch for them as part of the bundle.
        raise BundleError(f"{path}: holds files its manifest does not list ({', '.join(unlisted)}); move them out")
    try:
        with staged_bundle(bundle.path) as staging:
            try:
                shutil.copytree(bundle.path, staging, dirs_exist_ok=True)
                write_manifest(staging, write_gender_only_graphs(staging, bundle.manifest))
                check_every_graph(load_bundle(staging), threads=1)
            except BundleError as exc:
                # The staging copy is deleted on the way out: name the user's bundle, whose files it copies.
                raise BundleError(str(exc).replace(str(staging), str(given))) from None
    except OSError as exc:  # the staging folder and the swap are written in the folder above the bundle
        raise BundleError(f"cannot write beside {given} ({exc.strerror or exc})") from None
    return load_bundle(path)
