"""Command-line helpers shared by the bench scripts: argparse types, a help formatter that states defaults, checks
of the data folder and bundles made before any long work, and :func:`user_errors`, which turns footfall's own
errors about bad input into argparse's one-line error (exit 2) instead of a traceback.

Not a script: the scripts of bench/ import it (``sys.path`` holds their folder when they run).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from footfall.core.bundle import MAX_THREADS, Bundle, BundleError, load_bundle
from footfall.core.outpaths import OutputPathError, writable_file
from footfall.exporter.datasets import DATASETS as FACE_DATASETS  # utkface-112 and wiki-144, as edge/walkby.py reads
from footfall.exporter.datasets import missing_files
from footfall.models.checkpoint import CheckpointError
from footfall.models.datasets import DatasetError
from footfall.models.recipe import RecipeError

# footfall's errors that mean bad input (a bundle, a dataset, a recipe, a checkpoint, an output path); each message
# names the file and the problem. Anything else is a bug, and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (BundleError, DatasetError, RecipeError, CheckpointError, OutputPathError)

CLASSIFIER_TASK = "gender-classification"
DETECTOR_TASK = "face-detection"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default after its help, unless there is none to state
    (a flag, an option that is off unless given) or the help says it in its own words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def fraction(text: str) -> float:
    """argparse type: a share, from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value:g} is not a share from 0 to 1")
    return value


def thread_count(text: str) -> int:
    """argparse type: onnxruntime threads, 1 to 64 (the bound of the edge config and FOOTFALL_ORT_THREADS)."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_THREADS}")
    return value


@contextmanager
def user_errors(parser: argparse.ArgumentParser, *more: type[Exception]) -> Iterator[None]:
    """Turns footfall's bad-input errors (:data:`USER_ERRORS`, and ``more``) raised inside the block into
    ``parser.error(message)``: one line on stderr, exit 2."""
    try:
        yield
    except (*USER_ERRORS, *more) as exc:
        parser.error(str(exc))


def require_datasets(
    parser: argparse.ArgumentParser, folder: Path, datasets: Iterable[str] = FACE_DATASETS, option: str = "--data"
) -> None:
    """``parser.error`` unless ``folder`` holds ``<name>.csv`` and ``<name>.zip`` for each dataset: checked
    before a run, so that a wrong ``--data`` is not found out minutes into it."""
    datasets = tuple(datasets)
    wanted = [f"{name}{suffix}" for name in datasets for suffix in (".csv", ".zip")]
    holds = f"it should hold the face datasets {', '.join(wanted)} (see the data README)"
    if not folder.is_dir():
        parser.error(f"{option} {folder}: no such folder; {holds}")
    missing = missing_files(folder, datasets)
    if missing:
        parser.error(f"{option} {folder}: {', '.join(missing)} missing; {holds}")


def require_bundle(parser: argparse.ArgumentParser, path: Path, task: str, option: str) -> Bundle:
    """The bundle at ``path``, loaded and checked (manifest, hashes), or ``parser.error`` when it cannot be used
    or is not a ``task`` bundle (a detector given for the gender classifier, say)."""
    try:
        bundle = load_bundle(path)
    except BundleError as exc:
        parser.error(f"{option}: {exc}")
    if bundle.manifest.task != task:
        parser.error(f"{option} {path}: a {bundle.manifest.task} bundle, not a {task} bundle")
    return bundle


def require_writable_file(parser: argparse.ArgumentParser, path: Path | None, option: str) -> None:
    """``parser.error`` unless ``path`` (when given) can be written as a file: checked before a run whose results go
    there at its end (footfall.core.outpaths)."""
    if path is None:
        return
    try:
        writable_file(path)
    except OutputPathError as exc:
        parser.error(f"{option} {exc}")
