"""Model-bundle manifest: the contract between the exporter (writes it) and the edge (reads it).

A bundle is a folder: ``manifest.json``, the ONNX model the edge runs, optionally the FP32 graph kept for
parity runs, a model card and reports. The manifest states the pre-processing contract, labels,
calibration, metrics, a sha256 of every file, and where the weights came from.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from footfall.core.preprocess import FaceCropSpec
from footfall.core.quantify import LABELS as GENDER_LABELS
from footfall.core.quantify import DecisionRates
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA: Final = "footfall.bundle/1"


class _Model(BaseModel):
    # Finite numbers only: a NaN age passed "strictly ascending" (every comparison with NaN is false).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FileEntry(_Model):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class TensorSpec(_Model):
    name: str
    shape: list[int | str] = Field(description="Dimensions; a string names a dynamic one, e.g. 'batch'.")
    dtype: Literal["float32", "uint8", "int8"] = "float32"


class DetectorContract(_Model):
    """How a frame is fed to a face detector and its outputs decoded."""

    family: Literal["centerface"] = "centerface"
    colour_order: Literal["RGB", "BGR"] = "RGB"
    stride: int = Field(default=32, ge=1, le=128, description="Input sides are rounded up to a multiple of this.")
    score_threshold: float = Field(default=0.5, gt=0, lt=1)
    nms_iou: float = Field(default=0.3, gt=0, lt=1)


class AgeContract(_Model):
    """How a classifier's age output becomes an age estimate and a band decision (footfall.core.ages)."""

    output: str = Field(default="age", description="Name of the ONNX output holding the age logits.")
    ages: list[float] = Field(
        min_length=2, description="The age in years each logit stands for, ascending (the last one: that age or more)."
    )
    temperature: float = Field(default=1.0, gt=0, description="Divide age logits by this before softmax.")
    band_threshold: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Below this probability of the most likely band the band decision is 'unknown'. Chosen on "
        "validation faces.",
    )
    # onnxruntime runs every node of a graph, whichever outputs are read: a site that estimates no age runs
    # these copies, which have no age head at all.
    gender_only_model_file: str | None = Field(
        default=None, description="The model graph pruned to its gender output (no age head): a site without age."
    )
    gender_only_reference_model_file: str | None = Field(
        default=None, description="The FP32 reference graph pruned the same way (its parity fallback)."
    )

    @model_validator(mode="after")
    def _ascending(self) -> AgeContract:
        if any(b <= a for a, b in zip(self.ages, self.ages[1:], strict=False)):
            raise ValueError("ages must be strictly ascending")
        return self


class ClassifierContract(_Model):
    """How a face chip is made and how the classifier's logits become a decision."""

    preprocess: FaceCropSpec
    labels: list[str] = Field(
        min_length=2,
        max_length=2,
        description="Logit order: 'female' and 'male', each once (what the wire schema counts).",
    )
    temperature: float = Field(default=1.0, gt=0, description="Divide logits by this before softmax.")
    abstain_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Below this top probability the decision is 'unknown'."
    )
    track_thresholds: dict[str, float] | None = Field(
        default=None,
        description=(
            "Per label, the lowest track-averaged probability for that decision (the edge decides once per "
            "person). Chosen on walk-by clips of validation faces so that each label is counted at the rate "
            "it truly occurs (unequal abstention or one-sided mistakes bias the shares counted). Absent: "
            "abstain_threshold for all."
        ),
    )

    age: AgeContract | None = Field(
        default=None, description="The bundle's age head, when it has one: a second output of the same graph."
    )

    decision_rates: DecisionRates | None = Field(
        default=None,
        description=(
            "How the per-person decision (with track_thresholds) answers each true gender: people per true "
            "label and decision, counted on walk-by clips of validation faces through the edge pipeline. "
            "The server and `footfall process` correct female shares with them (footfall.core.quantify)."
        ),
    )

    @model_validator(mode="after")
    def _track_thresholds_name_labels(self) -> ClassifierContract:
        # Any other names loaded and verified, and the edge then counted nobody as female or male.
        if sorted(self.labels) != list(GENDER_LABELS):
            raise ValueError(f"labels must be 'female' and 'male', each once, in logit order; got {self.labels}")
        if self.track_thresholds is not None:
            if set(self.track_thresholds) != set(self.labels):
                raise ValueError(f"track_thresholds must name each label once: {self.labels}")
            if not all(0.5 <= t <= 1 for t in self.track_thresholds.values()):
                raise ValueError("track_thresholds must lie within [0.5, 1]")
        return self


class ParityProbe(_Model):
    """A few inputs made from public-domain images (no dataset faces), the FP32 graph's outputs on them and
    how far the shipped graph may stray: the edge runs it on its own CPU before serving an INT8 graph."""

    file: str = Field(default="probe.npz", description="npz with 'inputs' (uint8) and 'reference' (FP32).")
    measure: Literal["heatmap", "probabilities"] = Field(
        description="What is compared: a detector's face heatmap, or a classifier's calibrated probabilities."
    )
    tolerance: float = Field(gt=0, le=1, description="Largest |shipped − FP32| allowed on any probe value.")
    error_at_export: float = Field(ge=0, description="|INT8 − FP32| measured when the bundle was built.")
    cpu_at_export: str = Field(default="", description="The exporting CPU and its instruction-set flags.")


class Provenance(_Model):
    source: str = Field(description="Where the weights came from (checkpoint, registry package, ...).")
    source_sha256: str | None = None
    licence: str
    training_data: list[str] = Field(default_factory=list)
    data_terms: str = ""
    tool_versions: dict[str, str] = Field(default_factory=dict)


class BundleManifest(_Model):
    schema_: Literal["footfall.bundle/1"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    name: str
    version: str
    task: Literal["gender-classification", "face-detection"]
    created_at: AwareDatetime
    model_file: str = "model.onnx"
    reference_model_file: str | None = Field(
        default=None, description="FP32 graph kept beside an INT8 model for parity runs."
    )
    precision: Literal["fp32", "int8"]
    input: TensorSpec
    outputs: list[TensorSpec]
    classifier: ClassifierContract | None = None
    detector: DetectorContract | None = None
    probe: ParityProbe | None = Field(
        default=None, description="Parity self-check run where the bundle is served (INT8 bundles)."
    )
    metrics: dict[str, dict[str, float | int | str]] = Field(
        default_factory=dict, description="Split name → measure → value, e.g. {'val': {'accuracy': 0.95}}."
    )
    files: dict[str, FileEntry] = Field(description="Every file of the bundle but the manifest.")
    provenance: Provenance

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True, exclude_none=True) + "\n"


def manifest_schema_text() -> str:
    """The JSON Schema of a bundle's manifest, as written to docs/bundle-manifest-schema.json."""
    import json

    return json.dumps(BundleManifest.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> FileEntry:
    return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(microsecond=0)
