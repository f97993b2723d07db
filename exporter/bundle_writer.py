"""Writing a bundle folder: stage every file, hash it into the manifest, then swap the folder in at once.

A bundle is built in a sibling staging folder and renamed over the old one only when it is complete, so
an interrupted export never leaves a half-written bundle where the edge would load it.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from footfall.core.manifest import MANIFEST_FILE, BundleManifest, file_entry

TOOL_PACKAGES = ("footfall", "onnx", "onnxruntime", "torch", "numpy", "opencv-python-headless")


def tool_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of the tools that shaped a bundle, for its provenance."""
    versions = {"python": platform.python_version()}
    for package in (*TOOL_PACKAGES, *extra):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def check_bundle_target(out: Path, name: str | None = None, *, force: bool = False) -> None:
    """Raises ``FileExistsError`` unless ``out`` may be replaced by a bundle: absent, an empty folder, or a
    bundle folder (it holds a manifest). Anything else there would be deleted by the swap. Given the ``name`` of
    the bundle to write, a bundle there must have that name too (re-exporting a model over its own bundle), unless
    ``force``: another model's bundle would be replaced without a word."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder: give --out a bundle folder to write")
    manifest = out / MANIFEST_FILE
    if any(out.iterdir()) and not manifest.is_file():
        raise FileExistsError(
            f"{out} is a folder that holds no bundle (no {MANIFEST_FILE}); exporting there would delete what it "
            "holds: give --out a new folder or an existing bundle"
        )
    if name is None or force or not manifest.is_file():
        return
    try:
        held = json.loads(manifest.read_text(encoding="utf-8"))
        held_name, held_version = str(held["name"]), str(held.get("version", ""))
    except (OSError, ValueError, TypeError, KeyError):  # unreadable, not JSON, not a mapping, no name
        held_name, held_version = None, ""
    if held_name != name:
        what = (
            f"bundle {held_name} {held_version}".rstrip()
            if held_name
            else f"a bundle whose {MANIFEST_FILE} is unreadable"
        )
        raise FileExistsError(f"{out} already holds {what}; pass --force to replace it, or choose another --out")


@contextmanager
def staged_bundle(out: Path) -> Iterator[Path]:
    """Yields an empty staging folder; on success it replaces ``out``, on failure it is removed. ``out`` must be
    absent, empty or a bundle (:func:`check_bundle_target`), checked before anything is staged."""
    check_bundle_target(out)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if out.exists():
        out.rename(previous)
    staging.rename(out)
    out.chmod(0o755)
    shutil.rmtree(previous, ignore_errors=True)


def manifest_metrics(metrics: dict) -> dict[str, dict[str, float | int | str]]:
    """Figures as a manifest takes them: per split (or report), its numbers and strings; a NaN or infinity (an MAE
    over no known age), a list or a nested report are left out. JSON has no NaN: pydantic wrote it as null, and a
    manifest with a null figure loads nowhere."""
    clean: dict[str, dict[str, float | int | str]] = {}
    for split, measures in metrics.items():
        if not isinstance(measures, dict):
            continue
        kept = {
            str(key): value
            for key, value in measures.items()
            if isinstance(value, (int, str)) or (isinstance(value, float) and math.isfinite(value))
        }
        if kept:
            clean[str(split)] = kept
    return clean


def file_entries(folder: Path) -> dict:
    """A manifest ``files`` section: every plain file of the folder but the manifest itself."""
    return {
        path.name: file_entry(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_FILE
    }


def write_manifest(folder: Path, manifest: BundleManifest) -> BundleManifest:
    """Writes ``manifest.json`` with every file of the folder hashed into it; call it last."""
    final = manifest.model_copy(update={"files": file_entries(folder)})
    final = BundleManifest.model_validate(final.model_dump(by_alias=True))
    (folder / MANIFEST_FILE).write_text(final.dump())
    return final


def verify_written(out: Path) -> None:
    """The bundle just written must pass the edge's own checks: manifest, hashes, and every graph's tensors."""
    from footfall.core.bundle import check_every_graph, load_bundle

    check_every_graph(load_bundle(out), threads=1)


def install_card(folder: Path, card: str, export_heading: str = "## Export") -> None:
    """Replaces a bundle's model card with ``card`` (a card regenerated from evaluations of this bundle),
    keeping the export section the exporter appended, and re-hashes the manifest."""
    from footfall.core.bundle import load_bundle

    bundle = load_bundle(folder)
    path = folder / "MODEL_CARD.md"
    current = path.read_text() if path.is_file() else ""
    export = current[current.index(export_heading) :] if export_heading in current else ""
    path.write_text(card.rstrip() + ("\n\n" + export if export else "\n"))
    write_manifest(folder, bundle.manifest)
    load_bundle(folder)  # the edge's own checks must pass on what was written
