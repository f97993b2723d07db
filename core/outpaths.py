"""Checking, before a long run, that the file or folder it will write its results to can be written.

A command that finds out only at the end (after an evaluation, a calibration or a whole video) that its
``--out`` is a folder, or lies under a file or a read-only mount, throws the run away. These checks write
a throw-away file where the results will go, so they hold for the real filesystem and user (``os.access``
answers yes to root for read-only mounts and /proc), and make the folders the output needs, as writing it
would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and says why."""


def _probe(folder: Path, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".footfall-write-check-"):
            pass
    except OSError as exc:
        # mkdir's "File exists" for a folder under a file says nothing of which: name the file.
        blocker = next((parent for parent in (folder, *folder.parents) if parent.is_file()), None)
        why = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror or exc
        raise OutputPathError(f"{path}: cannot write here ({why})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def writable_file(path: Path, inputs: Iterable[Path] = ()) -> None:
    """Raises :class:`OutputPathError` unless ``path`` can be written as a file (its folders are made) and is none
    of the run's ``inputs`` (writing there would destroy what the run reads)."""
    for source in inputs:
        if _same_file(path, source):
            raise OutputPathError(f"{path}: is an input of this run ({source}); give another file")
    try:
        is_folder = path.is_dir()
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    if is_folder:
        raise OutputPathError(f"{path}: is a folder; give a file name")
    _probe(path.parent if str(path.parent) else Path("."), path)
    if path.exists():
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None


def writable_folder(path: Path) -> None:
    """Raises :class:`OutputPathError` unless files can be written into folder ``path`` (made if missing)."""
    try:
        not_a_folder = path.exists() and not path.is_dir()
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    if not_a_folder:
        raise OutputPathError(f"{path}: exists and is not a folder")
    _probe(path, path)
