"""There is one face crop/normalise implementation (footfall.core.preprocess); every part imports it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARTS = ("core", "edge", "models", "exporter", "server", "footfall", "bench")
PREPROCESS = REPO / "core" / "preprocess.py"
# Calls that cut or warp a face region: only the shared pre-processing may make them.
CROP_CALLS = {"warpAffine", "getRotationMatrix2D", "getAffineTransform", "estimateAffinePartial2D"}
# Files that warp images for another reason: training augmentation jitters finished chips (made by the
# shared crop), and the clip generators paste faces into synthetic scenes.
ALLOWED_WARPS = {"augment.py", "walkby.py", "make_sample_clip.py"}


def python_files() -> list[Path]:
    return [path for part in PARTS for path in (REPO / part).rglob("*.py") if ".venv" not in path.parts]


def called_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def defined_names(tree: ast.AST) -> set[str]:
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_no_other_module_warps_or_crops_faces() -> None:
    offenders = []
    for path in python_files():
        if path == PREPROCESS or path.name in ALLOWED_WARPS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        if hits := called_names(tree) & CROP_CALLS:
            offenders.append(f"{path.relative_to(REPO)} calls {sorted(hits)}")
        if hits := defined_names(tree) & {"crop_face", "normalise", "normalize", "preprocess_face"}:
            offenders.append(f"{path.relative_to(REPO)} defines {sorted(hits)}")
    assert not offenders, "crop/normalise must come from footfall.core.preprocess:\n" + "\n".join(offenders)


def test_training_export_and_edge_use_the_shared_preprocessing() -> None:
    users = {part: False for part in ("edge", "models", "exporter")}
    for path in python_files():
        part = path.relative_to(REPO).parts[0]
        if part in users:
            source = path.read_text()
            if "footfall.core.preprocess" in source or "footfall.core.classifier" in source:
                users[part] = True
    assert all(users.values()), f"parts not importing the shared pre-processing: {users}"
