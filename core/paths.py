"""Where the default model bundles live: shipped inside the package, under footfall/models/bundles.

The bundles are data of ``footfall.models`` (the training package), but the edge must not import training
code to find them: the folder is located from the package's import spec, which names its files without
running the package (nothing of ``footfall.models`` is imported).
"""

from __future__ import annotations

import importlib.util
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
