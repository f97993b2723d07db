"""Where the default model bundles live: shipped inside the package, under footfall/models/bundles."""

from __future__ import annotations

from pathlib import Path

import footfall.models

BUNDLES_DIR = Path(footfall.models.__file__).resolve().parent / "bundles"
DEFAULT_GENDER_BUNDLE = BUNDLES_DIR / "gender-v3"
DEFAULT_DETECTOR_BUNDLE = BUNDLES_DIR / "face-detector-centerface"
