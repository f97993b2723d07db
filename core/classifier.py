"""Gender classification of face chips with a classifier bundle: calibrated probabilities and abstention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.core.ages import AGE_BANDS, BAND_LOWER_EDGES, median_ages
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


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    band: str  # one of footfall.core.ages.AGE_BANDS, or "unknown" when the top band is below the threshold
    years: float  # the median age under the model's distribution (footfall.core.ages.median_ages)
    band_probabilities: dict[str, float]


@dataclass(frozen=True, slots=True)
class FaceOutputs:
    """One forward pass over a batch of chips: calibrated gender probabilities (``N × labels``) and, for a
    bundle with an age head when asked for, calibrated age probabilities (``N × len(contract.age.ages)``)."""

    gender: np.ndarray
    age: np.ndarray | None


class GenderClassifier:
    """Runs a gender-classification bundle; the decision rule (temperature, threshold) is the bundle's."""

    def __init__(
        self,
        bundle: Bundle | str | Path,
        *,
        reference: bool = False,
        self_check: bool = False,
        age: bool = True,
        threads: int | None = None,
    ):
        """``reference`` runs the FP32 graph; ``self_check`` runs the parity probe first and serves FP32 if
        INT8 strays on this CPU (the edge). :attr:`serving` says which graph runs. ``age=False`` estimates no
        age: the bundle's graphs pruned to the gender output run where it has them (:attr:`runs_age_head`
        says whether the graph still computes an age head that nobody reads: a bundle exported before them)."""
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        contract = self.bundle.manifest.classifier
        if contract is None:
            raise BundleError(f"{self.bundle.path}: not a gender-classification bundle")
        self.contract = contract
        self.labels = list(contract.labels)
        self.age_asked = age
        gender_only = not age and self.bundle.has_gender_only_graphs
        self.session, self.serving = open_model(
            self.bundle, reference=reference, self_check=self_check, gender_only=gender_only, threads=threads
        )
        self._input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self._gender_output = outputs[0]
        self._age_output: str | None = None
        self.runs_age_head = contract.age is not None and not gender_only
        if contract.age is not None and age:
            if contract.age.output not in outputs:
                raise BundleError(
                    f"{self.bundle.path}: the manifest names age output {contract.age.output!r}, "
                    f"the graph has {outputs}"
                )
            self._age_output = contract.age.output
            ages = np.asarray(contract.age.ages, dtype=np.float64)
            # Units × bands: which band each age unit falls in, to sum a distribution into band probabilities.
            bands = np.searchsorted(np.asarray(BAND_LOWER_EDGES, dtype=np.float64), ages, side="right") - 1
            self._band_matrix = np.eye(len(AGE_BANDS))[np.clip(bands, 0, len(AGE_BANDS) - 1)]
            self._ages = ages

    def fits(self, *, age: bool) -> bool:
        """Whether this classifier serves ``age`` (asked for or not) as well as one loaded for it would: asked, it
        must read the bundle's age output; not asked, it must not run an age head the bundle can leave out (its
        pruned graphs). A classifier that fits needs no reload when a site's mode changes."""
        if age:
            return self.has_age or self.contract.age is None
        return not (self.runs_age_head and self.bundle.has_gender_only_graphs)

    @property
    def has_age(self) -> bool:
        """Whether this classifier estimates age: the bundle has an age head, and ``age`` was asked for."""
        return self._age_output is not None

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

    def infer(self, chips: np.ndarray | list[np.ndarray], *, age: bool = True) -> FaceOutputs:
        """Gender and (``age`` and a bundle with an age head) age probabilities of each chip, one pass."""
        want_age = age and self._age_output is not None and self.contract.age is not None
        if len(chips) == 0:
            width = len(self.contract.age.ages) if want_age and self.contract.age is not None else 0
            return FaceOutputs(np.zeros((0, len(self.labels))), np.zeros((0, width)) if want_age else None)
        names = [self._gender_output] + ([self._age_output] if want_age and self._age_output else [])
        outputs: list[np.ndarray] = self.session.run(names, {self._input_name: normalise(chips, self.spec)})
        gender = softmax(outputs[0], self.contract.temperature)
        if not want_age or self.contract.age is None:
            return FaceOutputs(gender, None)
        return FaceOutputs(gender, softmax(outputs[1], self.contract.age.temperature))

    def band_probabilities(self, age_probabilities: np.ndarray) -> np.ndarray:
        """``N × len(AGE_BANDS)``: each band's probability under the age distributions."""
        if not self.has_age:
            raise BundleError(f"{self.bundle.path}: this classifier estimates no age (no age head, or age=False)")
        result: np.ndarray = np.atleast_2d(age_probabilities) @ self._band_matrix
        return result

    def decide_age(self, age_probabilities: np.ndarray) -> list[AgeEstimate]:
        """Age estimates (median years) and band decisions, abstaining below the bundle's band threshold;
        per person, pass the mean of its faces' age probabilities."""
        if not self.has_age or self.contract.age is None:
            raise BundleError(f"{self.bundle.path}: this classifier estimates no age (no age head, or age=False)")
        rows = np.atleast_2d(age_probabilities)
        bands = self.band_probabilities(rows)
        years = median_ages(rows, self._ages)
        estimates = []
        for row, median in zip(bands, years, strict=True):
            best = int(np.argmax(row))
            band = AGE_BANDS[best] if row[best] >= self.contract.age.band_threshold else "unknown"
            estimates.append(
                AgeEstimate(band, float(median), {name: float(p) for name, p in zip(AGE_BANDS, row, strict=True)})
            )
        return estimates

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
