"""Training smoke test on synthetic chips (checkpoint, resume, calibration); network, checkpoint contracts."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from footfall.core.preprocess import FaceCropSpec
from footfall.models.augment import AugmentConfig, augment_batch
from footfall.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from footfall.models.network import build_model, count_flops, count_parameters
from footfall.models.recipe import DatasetConfig, ModelConfig, Recipe, TrainConfig
from footfall.models.train import Schedule, SplitData, epoch_order, load_splits, sample_weights, train

SIZE = 32
TINY = {"stem": [8, 16], "widths": [16, 32], "depths": [1, 1], "dropout": 0.0}


def synthetic_split(count: int, seed: int) -> SplitData:
    """'female' chips are dark with a bright top half, 'male' chips bright with a dark top half."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    chips = rng.integers(0, 60, (count, SIZE, SIZE, 3)).astype(np.uint8)
    chips[labels == 1] += 120
    chips[labels == 0, : SIZE // 2] += 150
    return SplitData("synthetic", chips, labels.astype(np.int64), np.full(count, 30.0), [None] * count)


def tiny_recipe(tmp_path: Path, epochs: int) -> Recipe:
    return Recipe(
        name="smoke",
        seed=7,
        output=str(tmp_path / "run"),
        datasets=[DatasetConfig(name="synthetic", root="unused")],
        preprocess=FaceCropSpec(size=SIZE),
        model=ModelConfig(arch="facenet-small", kwargs=TINY),
        train=TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, warmup_epochs=0.5, patience=10, threads=1),
    )


def synthetic_data():
    splits = {"train": synthetic_split(96, 0), "val": synthetic_split(48, 1), "test": synthetic_split(48, 2)}
    return {"synthetic": splits}, {"synthetic": {"images": 192, "no_face": 0}}


def test_train_checkpoint_resume_and_calibrate(tmp_path: Path) -> None:
    first = train(tiny_recipe(tmp_path, epochs=2), progress=False, finish=False, data=synthetic_data())
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert first.name == "best.pt" and last["resume"]["state"]["epoch"] == 2
    steps_after_two = last["resume"]["state"]["step"]
    # Resume with a longer schedule: training continues from epoch 2, it does not start again.
    final_path = train(tiny_recipe(tmp_path, epochs=3), resume=True, progress=False, data=synthetic_data())
    resumed = load_checkpoint(tmp_path / "run" / "last.pt")
    assert resumed["resume"]["state"]["epoch"] == 3
    assert resumed["resume"]["state"]["step"] == steps_after_two + 96 // 16
    history = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert len(history) == 3
    final = load_checkpoint(final_path)
    assert final["temperature"] > 0 and 0.5 <= final["abstain_threshold"] <= 1
    assert {"val", "val_synthetic", "test_synthetic"} <= set(final["metrics"])
    # The synthetic task is easy: a few epochs learn it (a broken loop or label mix-up would not).
    assert final["metrics"]["val_synthetic"]["accuracy"] >= 0.9
    assert final["preprocess"] == FaceCropSpec(size=SIZE).model_dump()
    model = model_from_checkpoint(final)
    assert model(torch.zeros(3, 3, SIZE, SIZE)).shape == (3, 2)


def test_same_seed_same_weights(tmp_path: Path) -> None:
    a = train(tiny_recipe(tmp_path / "a", epochs=1), progress=False, finish=False, data=synthetic_data())
    b = train(tiny_recipe(tmp_path / "b", epochs=1), progress=False, finish=False, data=synthetic_data())
    wa, wb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bad_checkpoints_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(garbage)
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "something-else"}, wrong)
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(wrong)
    partial = tmp_path / "partial.pt"
    torch.save({"format": "footfall.checkpoint/1", "arch": "facenet-small"}, partial)
    with pytest.raises(CheckpointError, match="missing key 'arch_kwargs'"):
        load_checkpoint(partial)
    with pytest.raises(CheckpointError, match="temperature"):
        save_checkpoint({**_valid_checkpoint(), "temperature": 0.0}, tmp_path / "t.pt")


def test_files_that_are_no_checkpoint_and_checkpoints_that_build_no_network_are_checkpoint_errors(
    tmp_path: Path,
) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")  # the unpickler raised KeyError: a traceback
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(text)
    objects = tmp_path / "objects.pt"
    torch.save({"format": "footfall.checkpoint/1", "thing": Path("x")}, objects)
    with pytest.raises(CheckpointError, match="objects other than tensors") as caught:
        load_checkpoint(objects)
    assert "weights_only" not in str(caught.value)  # torch's advice would run the file's code
    good = _valid_checkpoint()
    for broken in (
        {**good, "arch": "no-such-arch"},
        {**good, "arch_kwargs": {**good["arch_kwargs"], "bogus": 1}},
        {**good, "state_dict": {k: v[..., :1] if v.ndim else v for k, v in good["state_dict"].items()}},
    ):
        with pytest.raises(CheckpointError, match="cannot be built"):
            model_from_checkpoint(broken)


def test_training_refuses_a_recipe_without_validation_faces_or_with_other_labels(tmp_path: Path) -> None:
    from footfall.models.datasets import DatasetError

    data, reports = synthetic_data()
    data["synthetic"]["val"] = synthetic_split(0, 1)  # trained to the end and wrote an uncalibrated checkpoint
    with pytest.raises(DatasetError, match="no readable face in the 'val' split of synthetic"):
        train(tiny_recipe(tmp_path, epochs=1), progress=False, data=(data, reports))
    assert not (tmp_path / "run" / "last.pt").exists()
    with pytest.raises(ValueError, match="labels must be female and male"):
        Recipe.model_validate({**tiny_recipe(tmp_path, 1).model_dump(), "labels": ["woman", "man"]})


def _valid_checkpoint() -> dict:
    model = build_model("facenet-small", **TINY)
    return {
        "format": "footfall.checkpoint/1",
        "arch": "facenet-small",
        "arch_kwargs": TINY,
        "state_dict": model.state_dict(),
        "preprocess": FaceCropSpec(size=SIZE).model_dump(),
        "labels": ["female", "male"],
        "temperature": 1.5,
        "abstain_threshold": 0.7,
        "metrics": {"val": {}},
        "training_data": [],
        "data_terms": "",
        "recipe": {},
        "seed": 1,
    }


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = save_checkpoint(_valid_checkpoint(), tmp_path / "c.pt")
    loaded = load_checkpoint(path)
    assert loaded["temperature"] == 1.5 and loaded["labels"] == ["female", "male"]
    model_from_checkpoint(loaded)


PLAIN_OPS = {"Conv", "Relu", "Add", "Mul", "MaxPool", "AveragePool", "Pad", "ReduceMean", "Reshape", "Gemm"}


def test_default_network_is_compact_and_exports_to_onnx(tmp_path: Path) -> None:
    from footfall.models.recipe import REPO_ROOT, load_recipe

    recipe = load_recipe(REPO_ROOT / "models" / "configs" / "audience-v7.yaml")
    model = build_model(recipe.model.arch, **recipe.model.kwargs).eval()
    assert count_parameters(model) < 2_000_000
    assert count_flops(model, recipe.preprocess.size) < 0.2e9
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from footfall.exporter.gender_export import export_onnx

    size = recipe.preprocess.size
    path = tmp_path / "m.onnx"
    assert model.age_head is not None  # the default model estimates age too
    for flip in (False, True):  # mirror averaging is chosen on val after training: both must export
        model.flip_average = flip
        export_onnx(model, size, path)
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        # Plain, quantizable operations only (the age head's input standardization is folded into its Gemm);
        # Concat joins the stages the age head reads, the shape ops come from mirror averaging's batch split.
        assert ops <= PLAIN_OPS | {"Concat"} | ({"Slice", "Shape"} if flip else set()), ops


def test_epoch_sees_each_dataset_by_its_weight_and_children_by_child_weight(tmp_path: Path) -> None:
    adults, mixed = synthetic_split(40, 0), synthetic_split(40, 1)
    adults = SplitData("a", adults.chips, adults.labels, np.full(40, 30.0), adults.races)
    mixed = SplitData("b", mixed.chips, mixed.labels, np.where(np.arange(40) < 10, 6.0, np.nan), mixed.races)
    recipe = tiny_recipe(tmp_path, 1).model_copy(
        update={
            "datasets": [DatasetConfig(name="a", root="x", weight=0.75), DatasetConfig(name="b", root="x", weight=1.5)],
            "train": TrainConfig(child_weight=2.0),
        }
    )
    weights = sample_weights(recipe, [adults, mixed])
    # Children (known age under 13) count twice; an unknown age is not a child.
    assert weights.tolist() == [0.75] * 40 + [3.0] * 10 + [1.5] * 30
    order = epoch_order(weights, np.random.default_rng(0), None)
    seen = np.bincount(order, minlength=80)
    assert len(order) == 30 + 30 + 45 and set(seen[:40]) == {0, 1} and seen[:40].sum() == 30
    assert (seen[40:50] == 3).all() and set(seen[50:]) == {1, 2} and seen[50:].sum() == 45
    assert len(epoch_order(weights, np.random.default_rng(0), 7)) == 7


def test_schedule_warms_up_then_anneals_by_steps_or_by_the_time_budget(tmp_path: Path) -> None:
    schedule = Schedule.plan(tiny_recipe(tmp_path, epochs=5), np.ones(96))
    assert (schedule.per_epoch, schedule.total_steps, schedule.warmup) == (96, 30, 3)  # 6 batches of 16 an epoch
    lrs = [schedule.lr_now({"step": step, "train_seconds": 0.0}) for step in range(31)]
    assert lrs[:4] == pytest.approx([1e-3, 2e-3, 3e-3, 3e-3])  # warm-up to the peak, 3e-3
    assert all(a > b for a, b in itertools.pairwise(lrs[3:])) and lrs[30] == pytest.approx(0.02 * 3e-3)
    budget = Schedule(lr=1.0, cap=None, per_epoch=96, total_steps=30, warmup=0, budget_s=60.0, clock=time.monotonic())
    # Half the time budget spent on a tenth of the steps: the schedule is half way through.
    assert budget.progress({"step": 3, "train_seconds": 30.0}) == pytest.approx(0.5, abs=0.01)
    assert budget.progress({"step": 3, "train_seconds": 60.0}) >= 1.0


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet-9000")


def test_augmentation_keeps_shape_dtype_and_changes_pixels() -> None:
    chips = synthetic_split(8, 3).chips
    out = augment_batch(chips, AugmentConfig(), np.random.default_rng(0))
    assert out.shape == chips.shape and out.dtype == np.uint8
    assert not np.array_equal(out, chips)
    still = AugmentConfig(
        flip=0,
        scale=(1, 1),
        shift=0,
        rotate_deg=0,
        brightness=0,
        contrast=0,
        saturation=0,
        grayscale=0,
        blur=0,
        low_res=0,
        jpeg=0,
        noise=0,
    )
    assert np.array_equal(augment_batch(chips, still, np.random.default_rng(0)), chips)


def test_load_splits_reports_missing_detector(tmp_path: Path) -> None:
    from footfall.core.bundle import BundleError

    csv = tmp_path / "faces.csv"
    csv.write_text("path,gender\na.jpg,male\n")
    (tmp_path / "images").mkdir()
    recipe = Recipe(
        datasets=[DatasetConfig(name="x", root=str(csv), images=str(tmp_path / "images"))],
        detector_bundle=str(tmp_path / "no-detector"),
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(BundleError, match="not found"):
        load_splits(recipe, progress=False)


def test_flip_average_is_the_mean_of_a_chip_and_its_mirror() -> None:
    torch.manual_seed(0)
    model = build_model("facenet-small", **TINY, flip_average=True).eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    plain = build_model("facenet-small", **TINY).eval()
    plain.load_state_dict(model.state_dict())
    expected = (plain(x) + plain(torch.flip(x, dims=[3]))) / 2
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert torch.allclose(model(torch.flip(x, dims=[3])), model(x), atol=1e-5)  # mirror-invariant
    assert count_flops(model, SIZE) == 2 * count_flops(plain, SIZE)


def aged_split(count: int, seed: int) -> SplitData:
    """Synthetic chips whose brightness tells the age (10-70 years) and whose top half tells the gender."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    ages = rng.uniform(10, 70, count)
    chips = np.repeat((ages * 3)[:, None, None, None], 3, axis=3).repeat(SIZE, 1).repeat(SIZE, 2)
    chips = chips + rng.normal(0, 4, chips.shape)
    chips[labels == 0, : SIZE // 2] = 20
    return SplitData(
        "synthetic", np.clip(chips, 0, 255).astype(np.uint8), labels.astype(np.int64), ages, [None] * count
    )


def test_age_head_trains_calibrates_and_duplicates_leave_training(tmp_path: Path) -> None:
    train_split, val_split = aged_split(160, 0), aged_split(64, 1)
    test_split = aged_split(64, 2)
    # Four training chips are copies of test chips: they must not be trained on.
    train_split.chips[:4] = test_split.chips[:4]
    data = {"synthetic": {"train": train_split, "val": val_split, "test": test_split}}
    recipe = tiny_recipe(tmp_path, epochs=12).model_copy(
        update={
            "model": ModelConfig(arch="facenet-small", kwargs={**TINY, "age_classes": 81, "age_hidden": 16}),
            "train": TrainConfig(
                epochs=12, batch_size=16, lr=1e-2, warmup_epochs=0.5, patience=20, threads=1, age_weight=1.0
            ),
            # Brightness is this task's age cue: colour augmentation would blur it.
            "augment": AugmentConfig(brightness=0, contrast=0, saturation=0, grayscale=0),
        }
    )
    final = load_checkpoint(train(recipe, progress=False, data=(data, {"synthetic": {}})))
    history = [line for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert '"val_age_mae"' in history[0]
    assert final["age"]["ages"] == list(range(81)) and final["age"]["temperature"] > 0
    report = final["age"]["metrics"]["test_synthetic"]
    # Guessing the mean age (40) would give an MAE of about 15 years; the head learns far better than that.
    assert report["n"] == 64 and report["mae"] < 8
    assert sum(map(sum, report["band_confusion"])) == 64
    model = model_from_checkpoint(final)
    gender, age = model.eval().both(torch.zeros(2, 3, SIZE, SIZE))
    assert gender.shape == (2, 2) and age.shape == (2, 81)


def test_duplicates_of_held_out_chips_leave_the_training_set(tmp_path: Path) -> None:
    from footfall.models.train import TrainingSet

    train_split, test_split = synthetic_split(32, 0), synthetic_split(16, 2)
    train_split.chips[:3] = test_split.chips[:3]
    data = {"synthetic": {"train": train_split, "val": synthetic_split(16, 1), "test": test_split}}
    training = TrainingSet.gather(tiny_recipe(tmp_path, epochs=1), data)
    assert training.duplicates_dropped == {"synthetic": 3} and len(training.labels) == 29


def test_balancing_bias_equalises_recall_on_validation() -> None:
    from footfall.models.train import balancing_bias

    rng = np.random.default_rng(3)
    labels = np.arange(400) % 2
    # Women (label 0) are read as men more often: their female logit margin is smaller.
    margin = np.where(labels == 0, rng.normal(0.6, 1.0, 400), rng.normal(-1.4, 1.0, 400))
    logits = np.stack([margin, np.zeros(400)], axis=1).astype(np.float32)
    bias = balancing_bias({"d": logits}, {"d": labels})
    decided = (logits + np.array([bias, 0.0])).argmax(1)
    recalls = [(decided[labels == c] == c).mean() for c in (0, 1)]
    assert bias > 0 and abs(recalls[0] - recalls[1]) < 0.03


def test_race_balance_shows_rarer_groups_more_often_by_the_square_root(tmp_path: Path) -> None:
    split = synthetic_split(100, 0)
    split.races[:] = ["0"] * 64 + ["1"] * 16 + ["2"] * 16 + [None] * 4
    plain = tiny_recipe(tmp_path, epochs=1)
    balanced = plain.model_copy(update={"train": plain.train.model_copy(update={"race_balance": 0.5})})
    assert set(sample_weights(plain, [split])) == {1.0}
    weights = sample_weights(balanced, [split])
    # Group "0" holds 64/96 of the faces of known race (twice an equal third), "1" and "2" 16/96 (half of it).
    assert weights[0] == pytest.approx(2**-0.5, abs=0.01) and weights[70] == pytest.approx(2**0.5, abs=0.01)
    assert weights[-1] == 1.0  # race unknown: as it is


def age_training_on_frozen_gender(tmp_path: Path, model: ModelConfig):
    """Three epochs of age training with the gender network ``model`` starts from frozen."""
    return tiny_recipe(tmp_path, epochs=3).model_copy(
        update={
            "model": model,
            "train": TrainConfig(
                epochs=3, batch_size=16, lr=1e-2, warmup_epochs=0.5, threads=1, age_weight=1.0,
                frozen=["features", "head"],
            ),
        }
    )  # fmt: skip


def gender_kept_exactly(first: dict, second: dict) -> torch.Tensor:
    """Asserts that ``second`` holds every weight and BatchNorm statistic of ``first`` unchanged and answers
    gender bit for bit as it does; returns ``second``'s age logits on the same chips."""
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    chips = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (4, 3, SIZE, SIZE)).astype(np.float32))
    before, after = model_from_checkpoint(first).eval(), model_from_checkpoint(second).eval()
    after.flip_average = before.flip_average
    gender, age = after.both(chips)
    assert torch.equal(before(chips), gender)
    return age


def test_an_age_head_added_to_a_frozen_model_leaves_its_gender_answers_exactly_as_they_were(tmp_path: Path) -> None:
    data = {"synthetic": {"train": aged_split(96, 0), "val": aged_split(48, 1), "test": aged_split(48, 2)}}
    first = load_checkpoint(train(tiny_recipe(tmp_path / "a", epochs=2), progress=False, data=(data, {})))
    source = tmp_path / "gender.pt"
    save_checkpoint(first, source)
    model = ModelConfig(
        arch="facenet-small", kwargs={**TINY, "age_classes": 81, "age_hidden": 8}, from_checkpoint=str(source)
    )
    second = load_checkpoint(
        train(age_training_on_frozen_gender(tmp_path / "b", model), progress=False, data=(data, {}))
    )
    assert any(key.startswith("age_head.") for key in second["state_dict"])
    assert gender_kept_exactly(first, second).shape == (4, 81)


TINY_DLIB = {"stem": 8, "widths": [8, 16], "depths": [1, 1], "dropout": 0.0}


def age_grown_on_a_frozen_dlib_network(tmp_path: Path, age: dict, **model_fields: object) -> tuple[dict, dict]:
    """A tiny ``resnet-dlib`` trained for gender, then an age path (``age``: the network's age kwargs) trained on
    it with its gender path frozen; returns both checkpoints."""
    data = {"synthetic": {"train": aged_split(96, 0), "val": aged_split(48, 1), "test": aged_split(48, 2)}}
    base = tiny_recipe(tmp_path / "a", epochs=2)
    base = base.model_copy(update={"model": ModelConfig(arch="resnet-dlib", kwargs=TINY_DLIB)})
    first = load_checkpoint(train(base, progress=False, data=(data, {})))
    source = tmp_path / "gender.pt"
    save_checkpoint(first, source)
    model = ModelConfig(arch="resnet-dlib", kwargs={**TINY_DLIB, **age}, from_checkpoint=str(source), **model_fields)
    second = load_checkpoint(
        train(age_training_on_frozen_gender(tmp_path / "b", model), progress=False, data=(data, {}))
    )
    return first, second


def test_an_age_trunk_learns_age_on_features_of_its_own_and_leaves_gender_exactly_as_it_was(tmp_path: Path) -> None:
    """audience's age path: the frozen network's last block copied into a trunk of the age head's own (plus a
    block), trained for age while the gender path keeps every weight and BatchNorm statistic."""
    trunk = {"age_classes": 81, "age_hidden": 0, "age_branch": 1, "age_extra_blocks": 1}
    first, second = age_grown_on_a_frozen_dlib_network(tmp_path, trunk, age_trunk_init="features")
    weights = second["state_dict"]
    # The trunk started as a copy of the last block and learned away from it.
    assert not torch.equal(weights["age_trunk.0.conv1.0.weight"], weights["features.3.conv1.0.weight"])
    assert "age_trunk.1.conv2.0.weight" in weights, "the extra block"
    assert gender_kept_exactly(first, second).shape == (4, 81)


def test_an_age_head_on_every_stage_standardizes_its_inputs_and_leaves_gender_exactly_as_it_was(
    tmp_path: Path,
) -> None:
    """The default model's age path: the head reads each stage's pooled features, standardized with statistics measured
    once on the training chips (not left at 0 and 1), while the gender path keeps every weight and statistic."""
    from footfall.models.network import StandardizedLinear

    taps = {"age_classes": 81, "age_hidden": 6, "age_stages": 2, "age_standardize": True}
    first, second = age_grown_on_a_frozen_dlib_network(tmp_path, taps)
    weights = second["state_dict"]
    assert weights["age_head.0.weight"].shape == (6, 8 + 16), "both stages' features"
    assert not torch.equal(weights["age_head.0.feature_mean"], torch.zeros(24))
    assert not torch.equal(weights["age_head.0.feature_scale"], torch.ones(24))
    assert gender_kept_exactly(first, second).shape == (4, 81)
    assert isinstance(model_from_checkpoint(second).age_head[0], StandardizedLinear)


def test_an_age_head_reads_only_stages_the_network_has() -> None:
    with pytest.raises(ValueError, match="age_stages"):
        build_model("resnet-dlib", age_classes=81, age_stages=4)
    with pytest.raises(ValueError, match="age_stages"):
        build_model("resnet-dlib", age_stages=2)  # no age head to read them
    with pytest.raises(ValueError, match="age_stages"):
        build_model("resnet-dlib", age_classes=81, age_stages=2, age_branch=1)


@pytest.mark.parametrize("size", [3, 4, 7, 14])
def test_grid_pooling_cuts_the_cells_adaptive_pooling_cuts(size: int) -> None:
    """The age head's 2 × 2 cells of each stage (3 × 3, 7 × 7 and 14 × 14 maps at 64 px), as one average pooling."""
    from footfall.models.network import grid_pooled

    x = torch.randn(2, 5, size, size)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
    assert torch.allclose(grid_pooled(x, 2), expected, atol=1e-6)


def test_grid_pooling_refuses_cells_one_average_pooling_cannot_cut() -> None:
    from footfall.models.network import grid_pooled

    with pytest.raises(ValueError, match="5-wide map does not split into 3"):
        grid_pooled(torch.randn(1, 2, 5, 5), 3)  # adaptive cells 0-2, 1-4, 3-5: unequal
    with pytest.raises(ValueError, match="age_pool_grid"):
        build_model("resnet-dlib", age_classes=81, age_pool_grid=2)  # one stage: the gender features as they are


def test_a_grid_pooled_age_head_reads_each_stage_per_cell_and_leaves_gender_features_as_they_were() -> None:
    from footfall.models.network import grid_pooled

    torch.manual_seed(0)
    kwargs = {"age_classes": 81, "age_hidden": 6, "age_stages": 2}
    whole = build_model("resnet-dlib", **{**TINY_DLIB, **kwargs}).eval()
    cells = build_model("resnet-dlib", **{**TINY_DLIB, **kwargs, "age_pool_grid": 2}).eval()
    cells.load_state_dict({k: v for k, v in whole.state_dict().items() if not k.startswith("age_head.")}, strict=False)
    x = torch.randn(3, 3, 64, 64)
    gender, age = cells.embed_both(x)
    assert torch.equal(gender, whole.embed_both(x)[0])
    assert age.shape == (3, (8 + 16) * 4)
    last_stage = cells.features(x)
    assert torch.allclose(age[:, 8 * 4 :], grid_pooled(last_stage, 2))


def test_training_dropout_on_a_standardizing_age_head_drops_standardized_features() -> None:
    """A dropped feature reads as its training mean, so a face whose features are all at their means gets the
    same age logits with dropout as without. Dropped before standardizing (as audience-v5 was trained), each
    dropped feature read as minus its mean in standard deviations: noise the exported head never sees."""
    torch.manual_seed(0)
    kwargs = {"age_classes": 81, "age_hidden": 6, "age_stages": 2, "age_standardize": True, "dropout": 0.5}
    model = build_model("resnet-dlib", **{**TINY_DLIB, **kwargs})
    head = model.age_head[0]
    head.set_input_statistics(torch.rand(64, 24) * 3 + 2)  # pooled features: positive, means far from 0
    at_mean = head.feature_mean.expand(32, -1)
    model.eval()
    expected = model.age_logits(at_mean)
    model.train()
    assert torch.allclose(model.age_logits(at_mean), expected)
    # Features away from their means are dropped (training only): the logits vary, around the eval answer.
    off_mean = at_mean + torch.randn(32, 24) / head.feature_scale
    assert not torch.allclose(model.age_logits(off_mean), model.age_logits(off_mean))
    model.eval()
    assert torch.equal(model.age_logits(off_mean), model.age_logits(off_mean))


def test_an_age_trunk_starts_as_the_recipe_says_without_a_checkpoint_too() -> None:
    """``age_trunk_init`` holds for a network trained whole from its own start, not only for one grown from a
    checkpoint: the trunk starts as a copy of the blocks it branches from, not at random."""
    from footfall.models.train import TrainingSet, build_student

    trunk = {"age_classes": 81, "age_hidden": 0, "age_branch": 1}
    recipe = age_training_on_frozen_gender(
        Path("unused"), ModelConfig(arch="resnet-dlib", kwargs={**TINY_DLIB, **trunk}, age_trunk_init="features")
    )
    recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"frozen": []})})
    data = {"synthetic": {"train": aged_split(32, 0), "val": aged_split(16, 1), "test": aged_split(16, 2)}}
    model = build_student(recipe, TrainingSet.gather(recipe, data), resume=False).model
    copied, source = model.age_trunk[0].state_dict(), model.features[-1].state_dict()
    assert all(torch.equal(value, source[key]) for key, value in copied.items())


def test_an_age_trunk_needs_an_age_head_and_blocks_to_copy() -> None:
    with pytest.raises(ValueError, match="needs an age head"):
        build_model("resnet-dlib", age_branch=1)
    with pytest.raises(ValueError, match="at most as many blocks"):
        build_model("resnet-dlib", age_classes=81, age_branch=5)
    with pytest.raises(ValueError, match="extra blocks only with a branch"):
        build_model("resnet-dlib", age_classes=81, age_extra_blocks=1)


def test_a_gender_head_retrained_on_a_frozen_network_leaves_every_age_answer_as_it_was(tmp_path: Path) -> None:
    """audience-v8's recipe: the backbone and the age head frozen, only the gender head learns (with one dataset's
    women seen more often)."""
    taps = {"age_classes": 81, "age_hidden": 6, "age_stages": 2, "age_standardize": True}
    _, aged = age_grown_on_a_frozen_dlib_network(tmp_path, taps)
    source = tmp_path / "aged.pt"
    save_checkpoint(aged, source)
    data = {"synthetic": {"train": aged_split(96, 3), "val": aged_split(48, 1), "test": aged_split(48, 2)}}
    recipe = tiny_recipe(tmp_path / "c", epochs=2).model_copy(
        update={
            "datasets": [DatasetConfig(name="synthetic", root="unused", label_weight={"female": 2.5})],
            "model": ModelConfig(arch="resnet-dlib", kwargs={**TINY_DLIB, **taps}, from_checkpoint=str(source)),
            "train": TrainConfig(
                epochs=2, batch_size=16, lr=1e-2, warmup_epochs=0.5, threads=1, frozen=["features", "age_head"]
            ),
        }
    )
    retrained = load_checkpoint(train(recipe, progress=False, data=(data, {})))
    before, after = aged["state_dict"], retrained["state_dict"]
    assert not torch.equal(before["head.weight"], after["head.weight"]), "the gender head learned"
    for key, value in before.items():
        if not key.startswith("head."):
            assert torch.equal(value, after[key]), key
    chips = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (4, 3, SIZE, SIZE)).astype(np.float32))
    old, new = model_from_checkpoint(aged), model_from_checkpoint(retrained)
    assert torch.equal(old.both(chips)[1], new.both(chips)[1])


def test_label_weight_shows_one_datasets_faces_of_a_label_more_often(tmp_path: Path) -> None:
    split = synthetic_split(40, 0)  # labels alternate: female, male, ...
    other = SplitData("b", split.chips, split.labels, np.full(40, 30.0), split.races)
    recipe = tiny_recipe(tmp_path, 1).model_copy(
        update={
            "datasets": [
                DatasetConfig(name="synthetic", root="x", weight=1.5, label_weight={"female": 2.0}),
                DatasetConfig(name="b", root="x"),
            ],
            "train": TrainConfig(child_weight=2.0),
        }
    )
    weights = sample_weights(recipe, [split, other])
    assert weights[:40].tolist() == [3.0, 1.5] * 20, "the first dataset's women twice, on top of its weight"
    assert weights[40:].tolist() == [1.0] * 40, "the other dataset as it was"


def test_label_weights_must_name_a_label_and_be_positive() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="label_weight names"):
        Recipe(datasets=[DatasetConfig(name="a", root="x", label_weight={"woman": 2.0})])
    with pytest.raises(ValidationError, match=r"\(0, 10\]"):
        DatasetConfig(name="a", root="x", label_weight={"female": 0.0})


def test_subnormal_weights_are_flushed_to_zero_and_answers_stay_the_same() -> None:
    """Weight decay leaves weights below float32's normal range, which some CPUs multiply very slowly; flushed,
    the network answers the same."""
    from footfall.models.network import FLOAT32_TINY, flush_subnormal_weights

    torch.manual_seed(0)
    model = build_model("resnet-dlib", **TINY_DLIB).eval()
    stem = model.features[0][0].weight
    with torch.no_grad():
        stem.view(-1)[::7] = FLOAT32_TINY / 16
    chips = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (4, 3, SIZE, SIZE)).astype(np.float32))
    with torch.no_grad():
        before = model(chips)
    subnormal = len(range(0, stem.numel(), 7))
    assert flush_subnormal_weights(model) == subnormal
    assert int((stem == 0).sum()) >= subnormal and flush_subnormal_weights(model) == 0
    with torch.no_grad():
        assert torch.equal(model(chips), before)
    # A checkpoint's network is rebuilt flushed (training, export and evaluation all load it so).
    checkpoint = _valid_checkpoint()
    first = next(key for key, value in checkpoint["state_dict"].items() if value.ndim == 4)
    checkpoint["state_dict"][first].view(-1)[0] = FLOAT32_TINY / 16
    assert model_from_checkpoint(checkpoint).state_dict()[first].view(-1)[0] == 0.0


def test_freezing_an_age_head_the_network_lacks_is_a_clear_error(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, 1)
    recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"frozen": ["age_head"]})})
    with pytest.raises(ValueError, match=r"train\.frozen names 'age_head', which this network does not have"):
        train(recipe, progress=False, data=synthetic_data())


def write_recipe(tmp_path: Path, model: dict | None = None, **sections: dict) -> Path:
    """A recipe file whose dataset does not exist: anything that reads data fails, so a recipe error must come
    before it."""
    import yaml

    recipe = {
        "output": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "datasets": [{"name": "missing", "root": str(tmp_path / "missing.csv"), "images": str(tmp_path / "none")}],
        "model": model or {"arch": "facenet-small"},
        **sections,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_an_unknown_architecture_or_network_argument_is_refused_when_the_recipe_loads(tmp_path: Path) -> None:
    """Both were found only after the chips were cut (27 minutes on cold caches), then as a traceback."""
    from footfall.models.recipe import RecipeError, load_recipe

    path = write_recipe(tmp_path, {"arch": "resnet_dlib"})
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert (
        str(caught.value)
        == f"{path}: model.arch: 'resnet_dlib' is no architecture; choose facenet-small or resnet-dlib"
    )
    path = write_recipe(tmp_path, {"arch": "resnet-dlib", "kwargs": {"dropuot": 0.2}})
    with pytest.raises(RecipeError, match=r"model\.kwargs: unknown 'dropuot' for resnet-dlib \(known: .*dropout"):
        load_recipe(path)


def test_network_arguments_the_network_refuses_fail_before_any_data_is_read(tmp_path: Path) -> None:
    from footfall.models.recipe import RecipeError, load_recipe

    recipe = load_recipe(
        write_recipe(tmp_path, {"arch": "facenet-small", "kwargs": {"widths": [16, 32], "depths": [1]}})
    )
    with pytest.raises(
        RecipeError, match=r"^model\.kwargs: the facenet-small network refuses them \(widths and depths"
    ):
        train(recipe, progress=False)


def test_train_reports_a_bad_recipe_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from footfall.cli import app

    path = write_recipe(tmp_path, {"arch": "resnet-dlib", "kwargs": {"dropuot": 0.2}})
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "unknown 'dropuot'" in result.output and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output


@pytest.mark.parametrize(
    ("section", "fields"),
    [("train", {"lr": math.inf}), ("train", {"weight_decay": math.nan}), ("calibration", {"target_accuracy": math.nan}),
     ("augment", {"blur_sigma": [0.4, math.inf]}), ("distill", {"temperature": math.inf})],
)  # fmt: skip
def test_recipe_numbers_must_be_finite(tmp_path: Path, section: str, fields: dict) -> None:
    """`lr: .inf` trained to the end with loss nan, then failed on the calibrated threshold."""
    from footfall.models.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=rf"{section}\.{next(iter(fields))}"):
        load_recipe(write_recipe(tmp_path, **{section: fields}))


def test_a_loss_that_is_no_longer_finite_stops_training_at_once(tmp_path: Path) -> None:
    """lr 1e6 trained every epoch to the end with loss=nan, then reported an abstention threshold out of range."""
    from footfall.models.recipe import RecipeError

    recipe = tiny_recipe(tmp_path, epochs=3)
    recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"lr": 1e6, "warmup_epochs": 0})})
    with pytest.raises(
        RecipeError, match=r"^loss became (NaN|infinite) at epoch 1 \(train\.lr 1e\+06 too high\?\); stopping$"
    ):
        train(recipe, progress=False, data=synthetic_data())
    assert not (tmp_path / "run" / "best.pt").exists()


def test_train_threads_are_bounded_like_the_other_thread_options(tmp_path: Path) -> None:
    """100000 threads segfaulted; 1000 thrashed a 2-core box."""
    from footfall.models.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"train\.threads: Input should be less than or equal to 64"):
        load_recipe(write_recipe(tmp_path, train={"threads": 100000}))
    assert load_recipe(write_recipe(tmp_path, train={"threads": 64})).train.threads == 64


def test_distill_workers_are_bounded_like_the_thread_options(tmp_path: Path) -> None:
    """Each worker is a process holding the teacher: 100000 of them would exhaust the box before any error."""
    from footfall.models.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"distill\.workers: Input should be less than or equal to 64"):
        load_recipe(write_recipe(tmp_path, distill={"workers": 100000}))


def test_a_recipe_whose_normalisation_divides_by_zero_is_refused_when_it_loads(tmp_path: Path) -> None:
    """preprocess.std 0 made every chip infinite in a channel: training ran on NaN losses."""
    from footfall.models.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"preprocess\.std\.0: Input should be greater than 0"):
        load_recipe(write_recipe(tmp_path, preprocess={"std": [0, 0.5, 0.5]}))


def _one_face_dataset(folder: Path) -> dict:
    """A readable dataset of one image: training would cut its chip, so a cache folder shows that it started."""
    import cv2

    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((112, 112, 3), 128, np.uint8))
    (folder / "faces.csv").write_text("path,gender,split\na.jpg,female,train\n")
    return {"name": "first", "root": str(folder / "faces.csv"), "images": str(folder)}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"datasets": [{"name": "second", "root": "{tmp}/missing.csv", "images": "{tmp}"}]}, "missing.csv"),
        ({"datasets": [{"name": "second", "root": "{tmp}/first/faces.csv", "images": "{tmp}/no-images.zip"}]},
         "no-images.zip"),
        ({"model": {"arch": "facenet-small", "from_checkpoint": "{tmp}/gender-v2.pt"}}, "gender-v2.pt"),
        ({"final_checkpoint": "{tmp}/first/faces.csv/final.pt"}, "final.pt: cannot write here"),
        ({"detector_bundle": "{tmp}/no-detector"}, "no-detector"),
    ],
    ids=["second-dataset-csv", "second-dataset-images", "from-checkpoint", "final-checkpoint", "detector"],
)  # fmt: skip
def test_every_path_of_a_recipe_is_checked_before_any_chip_is_cut(tmp_path: Path, change: dict, expected: str) -> None:
    """Found by attack: a missing second dataset or starting checkpoint failed only after the first dataset's chips
    were cut (minutes to half an hour on a cold cache), and an unwritable final_checkpoint after the whole run."""
    import json

    import yaml
    from typer.testing import CliRunner

    from footfall.cli import app

    first = _one_face_dataset(tmp_path / "first")
    change = json.loads(json.dumps(change).replace("{tmp}", str(tmp_path)))
    recipe = {
        "output": str(tmp_path / "run"),
        "cache_dir": str(tmp_path / "cache"),
        "model": {"arch": "facenet-small", "kwargs": TINY},
        "preprocess": {"size": SIZE},
        **change,
        "datasets": [first, *change.get("datasets", [])],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "cache").exists(), "no chip was cut before the refusal"
    assert not (tmp_path / "run").exists(), "no run folder was made"


def test_a_recipe_may_write_its_result_over_the_checkpoint_it_starts_from(tmp_path: Path) -> None:
    """Found in review: the check above refused final_checkpoint == model.from_checkpoint as 'an input of this run',
    a recipe the old code ran (the start is read whole before training, the result written at the end)."""
    from footfall.models.train import check_inputs

    start = save_checkpoint(_valid_checkpoint(), tmp_path / "current.pt")
    recipe = Recipe(
        datasets=[DatasetConfig(**_one_face_dataset(tmp_path / "first"))],
        model=ModelConfig(arch="facenet-small", kwargs=TINY, from_checkpoint=str(start)),
        final_checkpoint=str(start),
    )
    assert list(check_inputs(recipe, False, tmp_path / "run", Path(start))) == ["first"]


def test_a_run_with_a_folder_of_its_own_leaves_the_checkpoint_the_recipe_publishes_alone(tmp_path: Path) -> None:
    """Review: ``footfall train --out runs/try1`` with a shipped recipe replaced the shipped checkpoint (the recipe's
    final_checkpoint) without a word. Only a run in the recipe's own output folder writes it."""
    published = tmp_path / "checkpoints" / "smoke.pt"
    recipe = tiny_recipe(tmp_path, epochs=1).model_copy(update={"final_checkpoint": str(published)})
    experiment = train(recipe, out_dir=tmp_path / "try1", progress=False, data=synthetic_data())
    assert experiment == tmp_path / "try1" / "model.pt" and experiment.is_file()
    assert not published.exists(), "an experiment wrote the recipe's published checkpoint"
    # The recipe's own folder, named or not, publishes it.
    for out_dir in (None, tmp_path / "run"):
        final = train(recipe, out_dir=out_dir, progress=False, data=synthetic_data())
        assert final == tmp_path / "run" / "model.pt"
        written, kept = load_checkpoint(final), load_checkpoint(published)  # a torch archive names its file inside
        assert written["temperature"] == kept["temperature"]
        assert all(torch.equal(written["state_dict"][k], kept["state_dict"][k]) for k in written["state_dict"])
        published.unlink()


def test_an_epoch_smaller_than_a_batch_is_refused_rather_than_trained_on_nothing(tmp_path: Path) -> None:
    """Review: 40 training faces at batch size 128 made no batch at all; the run logged loss 0.0, images 0, and
    wrote a calibrated checkpoint of the untrained network with exit code 0."""
    from footfall.models.datasets import DatasetError

    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"batch_size": 128})})
    with pytest.raises(DatasetError, match=r"an epoch holds 96 training faces, fewer than train.batch_size \(128\)"):
        train(recipe, progress=False, data=synthetic_data())
    assert not (tmp_path / "run" / "model.pt").exists()


def test_resume_from_a_last_pt_of_another_kind_is_refused_before_any_chip_is_cut(tmp_path: Path) -> None:
    """Review: a damaged or unrelated last.pt was found out only after the chips were cut (half an hour on a cold
    cache)."""
    from footfall.models.train import check_inputs

    recipe = Recipe(
        datasets=[DatasetConfig(**_one_face_dataset(tmp_path / "first"))],
        model=ModelConfig(arch="facenet-small", kwargs=TINY),
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"half a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        check_inputs(recipe, True, run, None)
    save_checkpoint(_valid_checkpoint(), run / "last.pt")  # a final checkpoint: nothing to resume in it
    with pytest.raises(CheckpointError, match="cannot resume this recipe"):
        check_inputs(recipe, True, run, None)
    # A last.pt of the same architecture with other widths (a second review): found by the weights' shapes only
    # after the chips were cut.
    train(tiny_recipe(tmp_path, epochs=1), progress=False, finish=False, data=synthetic_data())
    wider = recipe.model_copy(update={"model": ModelConfig(arch="facenet-small", kwargs={**TINY, "widths": [24, 48]})})
    with pytest.raises(CheckpointError, match=r"not the last\.pt of a run of this network"):
        check_inputs(wider, True, run, None)
    same = recipe.model_copy(update={"model": ModelConfig(arch="facenet-small", kwargs=TINY)})
    assert list(check_inputs(same, True, run, None)) == ["first"]  # its own last.pt resumes
    assert list(check_inputs(recipe, False, run, None)) == ["first"]  # without --resume it is not read


def test_a_file_of_another_kind_is_said_to_be_no_checkpoint_at_all(tmp_path: Path) -> None:
    """Review: ``footfall export scores.csv`` said the CSV 'holds objects other than tensors', a reason for a pickle."""
    for name, content in (("scores.csv", b"path,gender\na.jpg,female\n"), ("model.onnx", b"\x08\x07\x12\x07pytorch")):
        file = tmp_path / name
        file.write_bytes(content)
        with pytest.raises(CheckpointError, match="no file torch writes") as caught:
            load_checkpoint(file)
        assert "objects other than tensors" not in str(caught.value)
