"""Gender classification of face chips with a classifier bundle: calibrated probabilities and abstention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.core.bundle import Bundle, BundleError, load_bundle
from footfall.core.preprocess import FaceCropSpec, crop_face, normalise
from footfall.core.serving import open_model

UNKNOWN = "unknown"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


@dataclass(frozen=True, slots=True)
class Decision:
    label: str  # one of the bundle's labels, or "unknown" when confidence is below the threshold
    probabilities: dict[str, float]


class GenderClassifier:
    """Runs a gender-classification bundle; the decision rule (temperature, threshold) is the bundle's."""

    def __init__(
        self,
        bundle: Bundle | str | Path,
        *,
        reference: bool = False,
        self_check: bool = False,
        threads: int | None = None,
    ):
        """``reference`` runs the FP32 graph; ``self_check`` runs the parity probe first and serves FP32 if
        INT8 strays on this CPU (the edge). :attr:`serving` says which graph runs."""
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        contract = self.bundle.manifest.classifier
        if contract is None:
            raise BundleError(f"{self.bundle.path}: not a gender-classification bundle")
        self.contract = contract
        self.labels = list(contract.labels)
        self.session, self.serving = open_model(
            self.bundle, reference=reference, self_check=self_check, threads=threads
        )
        self._input_name = self.session.get_inputs()[0].name

    @property
    def spec(self) -> FaceCropSpec:
        return self.contract.preprocess

    def crop(self, frame_bgr: np.ndarray, box: Sequence[float], landmarks: np.ndarray | None = None) -> np.ndarray:
        return crop_face(frame_bgr, box, self.spec, landmarks)

    def logits(self, chips: np.ndarray | list[np.ndarray]) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        outputs: list[np.ndarray] = self.session.run(None, {self._input_name: normalise(chips, self.spec)})
        return outputs[0]

    def probabilities(self, chips: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Calibrated class probabilities, ``N × len(labels)``."""
        return softmax(self.logits(chips), self.contract.temperature)

    def decide(self, probabilities: np.ndarray, *, per_track: bool = False) -> list[Decision]:
        """Turns probabilities into decisions, abstaining below the threshold: the bundle's single-face
        threshold, or with ``per_track`` (probabilities averaged over a person's track) its per-label track
        thresholds where it has them."""
        track_thresholds = self.contract.track_thresholds if per_track else None
        decisions = []
        for row in np.atleast_2d(probabilities):
            best = int(np.argmax(row))
            threshold = track_thresholds[self.labels[best]] if track_thresholds else self.contract.abstain_threshold
            label = self.labels[best] if row[best] >= threshold else UNKNOWN
            decisions.append(Decision(label, {name: float(p) for name, p in zip(self.labels, row, strict=True)}))
        return decisions
