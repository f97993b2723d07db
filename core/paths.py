"""Where the default model bundles live (shipped inside the package, under footfall/models/bundles), and the research
datasets (outside it).

The bundles are data of ``footfall.models`` (the training package), but the edge must not import training
code to find them: the folder is located from the package's import spec, which names its files without
running the package (nothing of ``footfall.models`` is imported).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def _package_dir(name: str) -> Path:
    """The folder of package ``name``, found without importing it (its parent packages are imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} is not installed", name=name)
    return Path(next(iter(spec.submodule_search_locations))).resolve()


BUNDLES_DIR = _package_dir("footfall.models") / "bundles"
DEFAULT_GENDER_BUNDLE = BUNDLES_DIR / "audience-v7"
DEFAULT_DETECTOR_BUNDLE = BUNDLES_DIR / "face-detector-centerface"


REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The research datasets' folder (UTKFace and wiki, never in the repository): ``FOOTFALL_DATA``, else
    ``shared/data`` beside the repository (or inside it) where there is one, else the first of those."""
    env = os.environ.get("FOOTFALL_DATA")
    if env:
        return Path(env)
    for candidate in (REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "data"
