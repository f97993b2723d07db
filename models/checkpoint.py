"""Training checkpoints: one ``torch.save`` dict with the weights and everything needed to rebuild,
calibrate and document the model (the exporter builds a bundle from it).

Format ``footfall.checkpoint/1``::

    {"format", "arch", "arch_kwargs", "state_dict", "preprocess" (FaceCropSpec dump), "labels",
     "temperature", "abstain_threshold", "metrics" (split -> measure -> number),
     "training_data", "data_terms", "recipe", "seed"}

Resume state (optimizer, scheduler, epoch, best score) travels under an optional ``"resume"`` key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHECKPOINT_FORMAT = "footfall.checkpoint/1"
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "arch": str,
    "arch_kwargs": dict,
    "state_dict": dict,
    "preprocess": dict,
    "labels": list,
    "temperature": (float, int),
    "abstain_threshold": (float, int),
    "metrics": dict,
    "training_data": list,
    "data_terms": str,
    "recipe": dict,
    "seed": int,
}


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message says what is wrong."""


def validate_checkpoint(data: Any, source: str = "checkpoint") -> dict:
    from footfall.core.preprocess import FaceCropSpec

    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: not a footfall checkpoint (a {type(data).__name__}, not a dict)")
    if data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source}: format is {data.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    for key, kind in REQUIRED_KEYS.items():
        if key not in data:
            raise CheckpointError(f"{source}: missing key {key!r}")
        if not isinstance(data[key], kind):
            raise CheckpointError(f"{source}: {key!r} has type {type(data[key]).__name__}")
    try:
        FaceCropSpec.model_validate(data["preprocess"])
    except Exception as exc:  # pydantic ValidationError: report it in one line
        raise CheckpointError(f"{source}: invalid 'preprocess' ({str(exc).splitlines()[0]})") from None
    if len(data["labels"]) < 2 or not all(isinstance(label, str) for label in data["labels"]):
        raise CheckpointError(f"{source}: 'labels' must list at least two class names")
    if not data["temperature"] > 0:
        raise CheckpointError(f"{source}: 'temperature' must be positive")
    if not 0 <= data["abstain_threshold"] <= 1:
        raise CheckpointError(f"{source}: 'abstain_threshold' must be within [0, 1]")
    for split, measures in data["metrics"].items():
        if not isinstance(measures, dict):
            raise CheckpointError(f"{source}: metrics[{split!r}] must map measure names to numbers")
    return data


def load_checkpoint(path: str | Path) -> dict:
    """Loads and validates a checkpoint (CPU tensors); raises :class:`CheckpointError` on a bad file."""
    import pickle

    import torch

    file = Path(path)
    if file.is_dir():
        raise CheckpointError(f"{file} is a directory, not a checkpoint file: give the .pt file")
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint file not found")
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    if magic[:4] != b"PK\x03\x04" and magic[:1] != b"\x80":
        # A torch checkpoint is a zip archive (or, from torch before 1.6, a pickle): a CSV, an ONNX graph or a
        # text file is not one, whatever the unpickler would say of it.
        raise CheckpointError(
            f"{file}: not a readable torch checkpoint (no file torch writes: give the .pt of footfall train)"
        )
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage makes the unpickler raise almost anything (KeyError for a text file)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
            # torch's advice (load with weights_only=False) would run whatever code the file holds.
            first = "it holds objects other than tensors and plain data, which footfall does not unpickle"
        raise CheckpointError(f"{file}: not a readable torch checkpoint ({first})") from None
    return validate_checkpoint(data, str(file))


def save_checkpoint(data: dict, path: str | Path) -> Path:
    """Validates then writes atomically (a crash mid-write never leaves a truncated checkpoint)."""
    import os

    import torch

    validate_checkpoint(data, str(path))
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, file)
    return file


def model_from_checkpoint(data: dict):
    """Rebuilds the network with its weights, in eval mode (subnormal weights flushed to zero:
    :func:`~footfall.models.network.flush_subnormal_weights`)."""
    from footfall.models.network import build_model, flush_subnormal_weights

    try:
        model = build_model(data["arch"], **data["arch_kwargs"])
        model.load_state_dict(data["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint's network cannot be built from its recipe and weights ({first})") from None
    flush_subnormal_weights(model)
    return model.eval()
