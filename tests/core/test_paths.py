"""The edge finds its model bundles without importing the training package (``footfall.models``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Imports every module of the shared core and the camera agent (those this install can import), loads the
# default bundles, and prints which footfall.models modules (training code) ended up imported.
PROBE = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    import footfall.core, footfall.edge
    from footfall.core.bundle import load_bundle
    from footfall.core.paths import BUNDLES_DIR, DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE

    for package in (footfall.core, footfall.edge):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                importlib.import_module(module.name)
            except ModuleNotFoundError as exc:  # an optional third-party package this install lacks
                if (exc.name or "").startswith("footfall"):
                    raise
    assert DEFAULT_DETECTOR_BUNDLE.parent == DEFAULT_GENDER_BUNDLE.parent == BUNDLES_DIR
    for bundle in (DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE):
        load_bundle(bundle)
    print(sorted(name for name in sys.modules if name == "footfall.models" or name.startswith("footfall.models.")))
    """
)


def test_edge_and_core_find_the_bundles_without_importing_the_training_package() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]", f"imported training code: {result.stdout.strip()}"


def test_the_bundles_folder_is_the_one_the_models_package_ships() -> None:
    import footfall.models
    from footfall.core.paths import BUNDLES_DIR, DEFAULT_DETECTOR_BUNDLE, DEFAULT_GENDER_BUNDLE

    assert Path(footfall.models.__file__).resolve().parent / "bundles" == BUNDLES_DIR
    assert (DEFAULT_DETECTOR_BUNDLE / "manifest.json").is_file() and (DEFAULT_GENDER_BUNDLE / "manifest.json").is_file()
