"""Training a gender model from cached face chips on a small CPU: fixed seed, progress bars, a checkpoint
every epoch (``last.pt``, resumable) and of the best validation score (``best.pt``), early stopping,
then temperature scaling and the abstention threshold on validation and the final figures on test.

Validation (the ``val`` splits) picks the epoch, the temperature and the threshold; the ``test`` splits
are only measured, once, at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from footfall.core.ages import median_ages
from footfall.core.bundle import BundleError
from footfall.core.logs import log_event
from footfall.core.outpaths import OutputPathError
from footfall.core.paths import DEFAULT_DETECTOR_BUNDLE
from footfall.core.preprocess import normalise
from footfall.models.augment import augment_batch
from footfall.models.calibration import choose_threshold, fit_temperature
from footfall.models.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from footfall.models.chips import ChipCache
from footfall.models.datasets import DatasetError, FaceRecord, ImageSource, load_dataset
from footfall.models.metrics import binary_report
from footfall.models.recipe import Recipe, RecipeError, resolve
from footfall.models.teacher import DESCRIPTOR_SIZE, Teacher

if TYPE_CHECKING:
    import torch
    from footfall.models.network import FlipAveragingClassifier
    from torch import nn

logger = logging.getLogger("footfall.models.train")


@dataclass
class SplitData:
    """The chips of one split of one dataset, in memory."""

    dataset: str
    chips: np.ndarray  # N×S×S×3 uint8
    labels: np.ndarray  # N int64
    ages: np.ndarray  # N float (NaN unknown)
    races: list[str | None]
    descriptors: np.ndarray | None = None  # N×128 teacher descriptors (train and val, when distilling)

    def subset(self, keep: np.ndarray) -> SplitData:
        """The faces where ``keep`` (a boolean mask) is true."""
        return SplitData(
            self.dataset,
            self.chips[keep],
            self.labels[keep],
            self.ages[keep],
            [race for race, k in zip(self.races, keep, strict=True) if k],
            self.descriptors[keep] if self.descriptors is not None else None,
        )


def read_datasets(recipe: Recipe) -> dict[str, tuple[list[FaceRecord], ImageSource]]:
    """Each dataset's records and image source; an error names the dataset."""
    read = {}
    for dataset in recipe.datasets:
        try:
            read[dataset.name] = load_dataset(
                dataset.kind,
                resolve(dataset.root, recipe),
                resolve(dataset.images, recipe) if dataset.images else None,
            )
        except DatasetError as exc:
            raise DatasetError(f"dataset {dataset.name}: {exc}") from None
    return read


def load_splits(
    recipe: Recipe,
    progress: bool = True,
    with_teacher: bool = False,
    datasets: dict[str, tuple[list[FaceRecord], ImageSource]] | None = None,
) -> tuple[dict[str, dict[str, SplitData]], dict[str, dict]]:
    """``{dataset: {split: SplitData}}`` and the detector report per dataset (no face found, ...);
    ``with_teacher`` adds the teacher's descriptors to the train and val splits. ``datasets``: what
    :func:`read_datasets` read, if it was read already."""
    detector = resolve(recipe.detector_bundle, recipe) if recipe.detector_bundle else DEFAULT_DETECTOR_BUNDLE
    cache_dir = resolve(recipe.cache_dir, recipe)
    datasets = datasets or read_datasets(recipe)
    data: dict[str, dict[str, SplitData]] = {}
    reports: dict[str, dict] = {}
    for dataset in recipe.datasets:
        records, source = datasets[dataset.name]
        cache = ChipCache(cache_dir, dataset.name, source, records, detector)
        chips = cache.chips(recipe.preprocess, progress)
        faces = cache.faces(progress=False)
        reports[dataset.name] = faces.summary()
        labels = np.array([recipe.labels.index(r.gender) for r in records], dtype=np.int64)
        ages = np.array([np.nan if r.age is None else r.age for r in records], dtype=np.float64)
        split_names = np.array([r.split for r in records])
        descriptors = None
        if with_teacher and recipe.distill is not None:
            from footfall.models.teacher import compute_descriptors, descriptors_path

            include = np.isin(split_names, ["train", "val"])
            descriptors = compute_descriptors(
                source,
                records,
                faces,
                descriptors_path(cache.folder, cache.detector_id, include),
                include=include,
                workers=recipe.distill.workers,
                progress=progress,
            )
        data[dataset.name] = {}
        for split in ("train", "val", "test"):
            index = np.nonzero((split_names == split) & faces.readable)[0]
            data[dataset.name][split] = SplitData(
                dataset.name,
                np.asarray(chips[index]),
                labels[index],
                ages[index],
                [records[i].race for i in index],
                descriptors[index] if descriptors is not None and split != "test" else None,
            )
        log_event(
            logger,
            logging.INFO,
            "dataset ready",
            dataset=dataset.name,
            **{s: len(d.labels) for s, d in data[dataset.name].items()},
            **reports[dataset.name],
        )
    return data, reports


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict_logits(model, chips: np.ndarray, spec, batch_size: int = 512) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(chips), batch_size):
            batch = torch.from_numpy(normalise(np.asarray(chips[start : start + batch_size]), spec))
            out.append(model(batch.contiguous(memory_format=torch.channels_last)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), np.float32)


def predict_both(model, chips: np.ndarray, spec, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Gender logits and age logits of a network with an age head."""
    import torch

    model.eval()
    gender, age = [], []
    with torch.inference_mode():
        for start in range(0, len(chips), batch_size):
            batch = torch.from_numpy(normalise(np.asarray(chips[start : start + batch_size]), spec))
            g, a = model.both(batch.contiguous(memory_format=torch.channels_last))
            gender.append(g.float().numpy())
            age.append(a.float().numpy())
    if not gender:
        width = model.both(torch.zeros(1, 3, spec.size, spec.size))[1].shape[1]
        return np.zeros((0, 2), np.float32), np.zeros((0, width), np.float32)
    return np.concatenate(gender), np.concatenate(age)


class BatchStream:
    """Augmented training batches made in a background thread (cv2 and numpy release the GIL), so the
    next batch is ready while the network trains on the current one."""

    def __init__(self, chips: np.ndarray, labels: np.ndarray, order: np.ndarray, recipe: Recipe, seed: int):
        self.chips, self.labels, self.order, self.recipe = chips, labels, order, recipe
        self.batch_size = recipe.train.batch_size
        self.rng = np.random.default_rng(seed)
        self.queue: queue.Queue = queue.Queue(maxsize=6)
        self.thread = threading.Thread(target=self._produce, daemon=True)
        self.stop = False
        self.thread.start()

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def _produce(self) -> None:
        for b in range(len(self)):
            if self.stop:
                return
            index = np.sort(self.order[b * self.batch_size : (b + 1) * self.batch_size])
            chips = augment_batch(self.chips[index], self.recipe.augment, self.rng)
            self.queue.put((normalise(chips, self.recipe.preprocess), self.labels[index], index))
        self.queue.put(None)

    def __iter__(self):
        while (item := self.queue.get()) is not None:
            yield item

    def close(self) -> None:
        self.stop = True
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)


CHILD_MAX_AGE = 13  # "children" are the 0-12 age band of the evaluation reports


def sample_weights(recipe: Recipe, train_sets: list[SplitData]) -> np.ndarray:
    """How often each image of the concatenated training set is seen per epoch: its dataset's weight, times
    the dataset's ``label_weight`` for the image's label, times ``train.child_weight`` for faces of known age
    under 13, times (``train.race_balance`` > 0) its race group's share of the dataset's faces of known race,
    relative to an equal share, to the power −``race_balance`` (0.5: rarer groups seen more often, by the square
    root of how much rarer they are)."""
    datasets = {d.name: d for d in recipe.datasets}
    parts = []
    for split in train_sets:
        dataset = datasets[split.dataset]
        per_label = np.array([dataset.label_weight.get(label, 1.0) for label in recipe.labels])
        weight = dataset.weight * per_label[split.labels]
        weight = weight * np.where(split.ages < CHILD_MAX_AGE, recipe.train.child_weight, 1.0)
        races = [race for race in split.races if race is not None]
        if recipe.train.race_balance > 0 and races:
            groups, counts = np.unique(np.array(races, dtype=str), return_counts=True)
            relative = dict(zip(groups.tolist(), (counts / counts.sum() * len(groups)).tolist(), strict=True))
            factor = [1.0 if race is None else relative[race] ** -recipe.train.race_balance for race in split.races]
            # Rounded, so that the epoch's draw has few distinct weights (epoch_order groups by weight).
            weight = weight * np.round(np.array(factor), 2)
        parts.append(weight)
    return np.concatenate(parts)


def epoch_order(weights: np.ndarray, rng: np.random.Generator, cap: int | None) -> np.ndarray:
    """Indices into the concatenated training set for one epoch: each image ``weights[i]`` times (the
    fractional part as a random subset of the images that share its weight), shuffled."""
    parts = []
    for weight in np.unique(weights):
        members = np.flatnonzero(weights == weight)
        whole, fraction = divmod(float(weight), 1.0)
        parts += [members] * int(whole)
        if fraction > 0:
            parts.append(rng.permutation(members)[: round(fraction * len(members))])
    order = rng.permutation(np.concatenate(parts))
    return order[:cap] if cap else order


def validate(model, val: dict[str, SplitData], spec) -> tuple[dict[str, float], dict[str, float]]:
    """Gender accuracy per dataset (what picks the epoch) and, for a network with an age head, age MAE in
    years per dataset (of the median age; logged, and it breaks ties of gender accuracy)."""
    from footfall.core.classifier import softmax

    scores, maes = {}, {}
    for name, split in val.items():
        if not len(split.labels):
            continue
        if getattr(model, "age_head", None) is None:
            logits = predict_logits(model, split.chips, spec)
        else:
            logits, age_logits = predict_both(model, split.chips, spec)
            known = ~np.isnan(split.ages)
            if known.any():
                estimate = median_ages(softmax(age_logits[known]), np.arange(age_logits.shape[1]))
                maes[name] = float(np.abs(estimate - split.ages[known]).mean())
        scores[name] = float((logits.argmax(1) == split.labels).mean())
    return scores, maes


@dataclass
class TrainingSet:
    """The recipe's training splits concatenated in its dataset order, with how often each image is seen per
    epoch, each face's age (NaN unknown) and age-distribution width, and the validation splits that pick the
    epoch."""

    splits: list[SplitData]
    chips: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    val: dict[str, SplitData]
    ages: np.ndarray
    age_sigmas: np.ndarray
    duplicates_dropped: dict[str, int]

    @classmethod
    def gather(cls, recipe: Recipe, data: dict[str, dict[str, SplitData]]) -> TrainingSet:
        names = [d.name for d in recipe.datasets]
        splits = [data[n]["train"] for n in names]
        dropped: dict[str, int] = {}
        if recipe.train.drop_duplicates:
            held_out = {chip_digest(c) for n in names for s in ("val", "test") for c in data[n][s].chips}
            kept = []
            for split in splits:
                keep = np.array([chip_digest(c) not in held_out for c in split.chips], dtype=bool)
                dropped[split.dataset] = int((~keep).sum())
                kept.append(split.subset(keep))
            splits = kept
        sigmas = {d.name: d.age_sigma for d in recipe.datasets}
        return cls(
            splits,
            np.concatenate([s.chips for s in splits]),
            np.concatenate([s.labels for s in splits]),
            sample_weights(recipe, splits),
            {n: data[n]["val"] for n in names},
            np.concatenate([s.ages for s in splits]),
            np.concatenate([np.full(len(s.labels), sigmas[s.dataset]) for s in splits]),
            dropped,
        )


def chip_digest(chip: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(chip).tobytes(), digest_size=16).digest()


def age_targets(ages: np.ndarray, sigmas: np.ndarray, classes: int) -> np.ndarray:
    """Each face's training target for the age head: a normal distribution over ages 0 … classes − 1 (the
    last unit: that age or more) centred on its age, ``sigmas`` wide, normalised."""
    grid = np.arange(classes, dtype=np.float64)
    centre = np.clip(ages, 0, classes - 1)[:, None]
    density = np.exp(-0.5 * ((grid[None, :] - centre) / sigmas[:, None]) ** 2)
    targets: np.ndarray = density / density.sum(axis=1, keepdims=True)
    return targets


@dataclass
class Student:
    """What training updates: the network, the average of its weights (what is validated, checkpointed and
    shipped), the optimizer and, when distilling, the teacher and the projection of the network's pooled
    features into the teacher's descriptor space (training only)."""

    model: FlipAveragingClassifier
    ema: FlipAveragingClassifier
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    teacher: Teacher | None = None
    projection: nn.Linear | None = None
    ages: np.ndarray | None = None  # the training set's ages (NaN unknown), when the age head is trained
    age_sigmas: np.ndarray | None = None
    age_weight: float = 0.0
    frozen: tuple[str, ...] = ()  # parts that keep their starting weights (train.frozen)

    def step(self, inputs: np.ndarray, labels: np.ndarray, index: np.ndarray, lr: float) -> torch.Tensor:
        """One optimizer step on a batch at learning rate ``lr``; returns the batch's loss."""
        import torch

        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = torch.from_numpy(inputs).contiguous(memory_format=torch.channels_last)
        features, age_features = self.model.embed_both(x)
        logits = self.model.head(self.model.dropout(features))
        loss = self.criterion(logits, torch.from_numpy(labels))
        if self.teacher is not None and self.projection is not None:
            loss = loss + self.teacher.loss(logits, self.projection(features), index)
        if self.age_weight > 0 and self.model.age_head is not None and self.ages is not None:
            age_logits = self.model.age_logits(age_features)
            loss = loss + self.age_weight * self.age_loss(age_logits, index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss

    def age_loss(self, age_logits: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """Cross-entropy to each face's age distribution plus 0.05 × |mean predicted age − age| (years), over
        the batch's faces of known age (DLDL-v2's pairing: the distribution, and its mean's error)."""
        import torch

        assert self.ages is not None and self.age_sigmas is not None
        ages = self.ages[index]
        known = ~np.isnan(ages)
        if not known.any():
            return age_logits.sum() * 0.0
        logits = age_logits[torch.from_numpy(known)]
        classes = logits.shape[1]
        targets = torch.from_numpy(age_targets(ages[known], self.age_sigmas[index][known], classes)).float()
        log_probs = torch.log_softmax(logits, dim=1)
        expected = (log_probs.exp() * torch.arange(classes, dtype=torch.float32)).sum(1)
        truth = torch.from_numpy(np.clip(ages[known], 0, classes - 1)).float()
        return -(targets * log_probs).sum(1).mean() + 0.05 * (expected - truth).abs().mean()

    def update_average(self, decay: float) -> None:
        """Moves the averaged weights towards the network's (buffers that are not floats, and frozen parts, are
        copied: averaging equal values in floating point would still nudge them)."""
        import torch

        frozen = tuple(f"{part}." for part in self.frozen)
        with torch.no_grad():
            ema, model = self.ema.state_dict(), self.model.state_dict()
            for key, e in ema.items():
                m = model[key]
                if e.dtype.is_floating_point and not key.startswith(frozen):
                    e.mul_(decay).add_(m.detach(), alpha=1 - decay)
                else:
                    e.copy_(m)

    def resume_point(self, state: dict) -> dict:
        """What ``last.pt`` keeps besides the averaged weights, to carry on from where training is now."""
        import torch

        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "projection": self.projection.state_dict() if self.projection is not None else None,
            "state": state,
            "torch_rng": torch.get_rng_state(),
        }

    def restore(self, saved: dict) -> dict:
        """Back to a ``last.pt``: weights, optimizer and random stream; returns the training state it saved."""
        import torch

        try:
            self.model.load_state_dict(saved["resume"]["model"])
            self.ema.load_state_dict(saved["state_dict"])
            if self.projection is not None:
                self.projection.load_state_dict(saved["resume"]["projection"])
            self.optimizer.load_state_dict(saved["resume"]["optimizer"])
            state = saved["resume"]["state"]
            torch.set_rng_state(saved["resume"]["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # another recipe's run, or a damaged one
            raise CheckpointError(
                f"the run's last.pt cannot resume this recipe ({type(exc).__name__}: {exc}); start without --resume"
            ) from None
        return state


@dataclass
class Schedule:
    """The learning rate: linear warm-up, then a cosine from ``lr`` down to 2 % of it, over the planned steps,
    or over the time budget when that runs out sooner."""

    lr: float
    cap: int | None  # images per epoch at most (``train.max_train_images``)
    per_epoch: int  # images per epoch
    total_steps: int
    warmup: int  # steps
    budget_s: float | None
    clock: float = 0.0  # time.monotonic() when the current stretch of training time began

    @classmethod
    def plan(cls, recipe: Recipe, weights: np.ndarray) -> Schedule:
        cap = recipe.train.max_train_images
        per_epoch = len(epoch_order(weights, np.random.default_rng(0), cap))
        steps_per_epoch = max(per_epoch // recipe.train.batch_size, 1)
        return cls(
            lr=recipe.train.lr,
            cap=cap,
            per_epoch=per_epoch,
            total_steps=steps_per_epoch * recipe.train.epochs,
            warmup=int(recipe.train.warmup_epochs * steps_per_epoch),
            budget_s=recipe.train.max_minutes * 60 if recipe.train.max_minutes else None,
            clock=time.monotonic(),
        )

    def progress(self, state: dict) -> float:
        """Fraction of training done: by steps, or by the time budget when that runs out sooner."""
        by_steps = state["step"] / self.total_steps
        if self.budget_s is None:
            return by_steps
        return max(by_steps, (state["train_seconds"] + time.monotonic() - self.clock) / self.budget_s)

    def lr_now(self, state: dict) -> float:
        if state["step"] < self.warmup:
            return self.lr * (state["step"] + 1) / self.warmup
        done = self.progress(state)
        warm = self.warmup / self.total_steps
        progress_ = (done - warm) / max(1.0 - warm, 1e-9)
        return self.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(max(progress_, 0.0), 1.0))))


def train(
    recipe: Recipe,
    *,
    resume: bool = False,
    out_dir: Path | None = None,
    progress: bool = True,
    finish: bool = True,
    data: tuple[dict[str, dict[str, SplitData]], dict] | None = None,
) -> Path:
    """Trains, calibrates and measures; returns the path of the final checkpoint. ``finish=False`` stops
    after training (``best.pt``, validation only: no test figures), e.g. for quick experiments.
    ``data`` replaces the chip cache (``load_splits``'s result), e.g. synthetic chips in tests.

    The recipe's ``final_checkpoint`` (for the shipped recipes, the checkpoint in models/checkpoints) is written
    only by a run in the recipe's own ``output`` folder: ``out_dir`` makes a run of its own, an experiment, which
    must not replace the checkpoint the recipe publishes (:func:`published_checkpoint`)."""
    check_network(recipe)
    publish = published_checkpoint(recipe, out_dir)
    datasets = check_inputs(recipe, resume, run_folder(recipe, out_dir), publish) if data is None else None
    out = start_run(recipe, out_dir)
    started = time.monotonic()
    data, detector_reports = (
        data
        if data is not None
        else load_splits(recipe, progress, with_teacher=recipe.distill is not None, datasets=datasets)
    )
    for split, why in (("train", "to learn from"), ("val", "to choose the epoch and calibrate on")):
        if not any(len(splits[split].labels) for splits in data.values()):
            names = ", ".join(data)
            raise DatasetError(f"no readable face in the {split!r} split of {names}: training needs one {why}")
    training = TrainingSet.gather(recipe, data)
    student = build_student(recipe, training, resume)
    schedule = Schedule.plan(recipe, training.weights)
    if schedule.per_epoch < recipe.train.batch_size:
        # Whole batches only: an epoch of fewer images than one batch trained on nothing, and still wrote a
        # calibrated checkpoint of the untrained network.
        raise DatasetError(
            f"an epoch holds {schedule.per_epoch} training faces, fewer than train.batch_size "
            f"({recipe.train.batch_size}): nothing to learn from; lower batch_size or add training data"
        )
    state = resume_or_start(out, resume, student)
    log_training_start(recipe, student, training, schedule)
    while (
        state["epoch"] < recipe.train.epochs and state["bad_epochs"] < recipe.train.patience and not state["finished"]
    ):
        loss_sum, seen = train_epoch(recipe, student, training, schedule, state, progress)
        improved = record_epoch(recipe, out, student, training, schedule, state, loss_sum, seen, started)
        save_epoch_checkpoints(recipe, out, student, state, improved)

    if state["bad_epochs"] >= recipe.train.patience:
        log_event(logger, logging.INFO, "early stop", best_epoch=state["best_epoch"])
    if not finish:
        return out / "best.pt"
    summary = run_summary(recipe, state, started, resume)
    final = finalize(recipe, out / "best.pt", data, detector_reports, out, summary, publish)
    log_event(
        logger,
        logging.INFO,
        "done",
        checkpoint=str(final),
        minutes=round((time.monotonic() - started) / 60, 1),
    )
    return final


def check_network(recipe: Recipe) -> None:
    """Builds the recipe's network once, so that arguments it refuses (the recipe checked their names) fail now,
    not after the chips are cut."""
    from footfall.models.network import build_model

    try:
        build_model(recipe.model.arch, **recipe.model.kwargs)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"model.kwargs: the {recipe.model.arch} network refuses them ({first})") from None


@contextlib.contextmanager
def _named(field: str) -> Iterator[None]:
    """An error about a path the recipe gives, with the recipe field it came from in front."""
    try:
        yield
    except (BundleError, CheckpointError, OutputPathError) as exc:
        raise type(exc)(f"{field}: {exc}") from None


def run_folder(recipe: Recipe, out_dir: Path | None) -> Path:
    """The run's folder: ``out_dir``, else the recipe's ``output``."""
    return Path(out_dir) if out_dir else resolve(recipe.output, recipe)


def published_checkpoint(recipe: Recipe, out_dir: Path | None) -> Path | None:
    """Where the run also writes its final checkpoint: the recipe's ``final_checkpoint``, unless the run has a
    folder of its own (``out_dir``, ``footfall train --out``): an experiment must not replace the checkpoint the
    recipe publishes (the shipped model's, for the shipped recipes) unless it runs in the recipe's own folder."""
    if not recipe.final_checkpoint:
        return None
    if out_dir is not None and run_folder(recipe, out_dir).resolve() != resolve(recipe.output, recipe).resolve():
        return None
    return resolve(recipe.final_checkpoint, recipe)


def check_inputs(
    recipe: Recipe, resume: bool, out: Path, publish: Path | None
) -> dict[str, tuple[list[FaceRecord], ImageSource]]:
    """Reads every file the recipe names (the datasets it returns), and checks that its final checkpoint can be
    written, so that a wrong path fails now: after the first dataset's chips are cut (half an hour on a cold cache)
    or after the whole run, it cost that time."""
    from footfall.core.bundle import load_bundle
    from footfall.core.outpaths import writable_file

    if recipe.model.init == "dlib-age-v1" and not resume:
        from footfall.models.pretrained import read_age_model

        read_age_model()
    datasets = read_datasets(recipe)
    with _named("detector_bundle"):
        load_bundle(resolve(recipe.detector_bundle, recipe) if recipe.detector_bundle else DEFAULT_DETECTOR_BUNDLE)
    if recipe.model.from_checkpoint and not resume:
        with _named("model.from_checkpoint"):
            load_checkpoint(resolve(recipe.model.from_checkpoint, recipe))
    if publish is not None:
        # It may be the starting checkpoint itself: that is read whole before training, and replaced at the end.
        with _named("final_checkpoint"):
            writable_file(publish)
    if resume and (out / "last.pt").is_file():
        # Before the chips are cut (half an hour with cold caches): a damaged last.pt, or another kind of file.
        saved = load_checkpoint(out / "last.pt")
        same_network = saved.get("arch") == recipe.model.arch and saved.get("arch_kwargs") == dict(recipe.model.kwargs)
        if not isinstance(saved.get("resume"), dict) or not same_network:
            raise CheckpointError(
                f"{out / 'last.pt'} cannot resume this recipe (not the last.pt of a run of this network, "
                f"{recipe.model.arch} {dict(recipe.model.kwargs)}); start without --resume, or give the run's folder "
                "with --out"
            )
    return datasets


def start_run(recipe: Recipe, out_dir: Path | None) -> Path:
    """The run's folder with the recipe in it; the thread count and the seeds set."""
    import torch
    from footfall.core.outpaths import writable_folder

    out = run_folder(recipe, out_dir)
    writable_folder(out)
    (out / "recipe.json").write_text(recipe.model_dump_json(indent=2))
    torch.set_num_threads(recipe.train.threads)
    seed_everything(recipe.seed)
    return out


def build_student(recipe: Recipe, training: TrainingSet, resume: bool) -> Student:
    """The network (from the recipe's starting weights unless resuming), its weight average, the teacher when
    distilling, and AdamW (no weight decay on biases and norms)."""
    import torch
    from footfall.models.network import build_model, flush_subnormal_weights
    from torch import nn

    # build_model types its result nn.Module; every architecture is a FlipAveragingClassifier.
    model = cast("FlipAveragingClassifier", build_model(recipe.model.arch, **recipe.model.kwargs))
    if recipe.model.init == "dlib-age-v1" and not resume:
        from footfall.models.pretrained import init_from_dlib_age

        count = len(training.chips)
        sample = np.random.default_rng(recipe.seed).choice(count, min(512, count), False)
        init_from_dlib_age(model, recipe.preprocess, training.chips[np.sort(sample)])
    # An age trunk starts as model.age_trunk_init says unless a checkpoint brought its weights.
    trunk_to_start = model.age_trunk is not None and not resume
    head_to_start = model.age_head is not None and not resume
    if recipe.model.from_checkpoint and not resume:
        start = load_checkpoint(resolve(recipe.model.from_checkpoint, recipe))
        misfit = RecipeError(f"{recipe.model.from_checkpoint}: its weights do not fit the recipe's network")
        try:
            missing, unexpected = model.load_state_dict(start["state_dict"], strict=False)
        except RuntimeError:  # a tensor of another shape
            raise misfit from None
        if unexpected or any(not key.startswith(("age_head.", "age_trunk.")) for key in missing):
            raise misfit
        log_event(logger, logging.INFO, "started from checkpoint", source=recipe.model.from_checkpoint, fresh=missing)
        trunk_to_start = trunk_to_start and any(key.startswith("age_trunk.") for key in missing)
        head_to_start = head_to_start and any(key.startswith("age_head.") for key in missing)
    if trunk_to_start:
        init_age_trunk(model, recipe, training)
    if head_to_start:
        standardize_age_inputs(model, recipe, training)
    flushed = flush_subnormal_weights(model)  # what weight decay left below float32's normal range runs slowly
    if flushed:
        log_event(logger, logging.INFO, "subnormal weights flushed to zero", count=flushed)
    for part in recipe.train.frozen:
        if getattr(model, part) is None:
            raise RecipeError(f"train.frozen names {part!r}, which this network does not have")
        for param in getattr(model, part).parameters():
            param.requires_grad_(False)
    model = model.to(memory_format=torch.channels_last)
    ema = cast("FlipAveragingClassifier", build_model(recipe.model.arch, **recipe.model.kwargs))
    ema = ema.to(memory_format=torch.channels_last)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    teacher = fit_teacher(recipe, training) if recipe.distill else None
    # Training only: maps the student's pooled features into the teacher's descriptor space.
    projection = nn.Linear(model.head.in_features, DESCRIPTOR_SIZE) if teacher else None
    decay, no_decay = [], []
    for param in [*model.parameters(), *(projection.parameters() if projection else [])]:
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe.train.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.train.lr,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.train.label_smoothing)
    trains_age = recipe.train.age_weight > 0 and model.age_head is not None
    return Student(
        model,
        ema,
        optimizer,
        criterion,
        teacher,
        projection,
        ages=training.ages if trains_age else None,
        age_sigmas=training.age_sigmas if trains_age else None,
        age_weight=recipe.train.age_weight if trains_age else 0.0,
        frozen=tuple(recipe.train.frozen),
    )


def standardize_age_inputs(model: FlipAveragingClassifier, recipe: Recipe, training: TrainingSet) -> None:
    """Fixes a fresh age head's input standardization (:class:`StandardizedLinear`, if it has one) to the
    statistics of its features on a sample of un-augmented training chips."""
    import torch
    from footfall.models.network import StandardizedLinear

    assert model.age_head is not None
    layers = [m for m in model.age_head.modules() if isinstance(m, StandardizedLinear)]
    if not layers:
        return
    count = len(training.chips)
    sample = np.sort(np.random.default_rng(recipe.seed).choice(count, min(4096, count), False))
    was_training = model.training
    model.eval()  # frozen BatchNorm statistics and no dropout: the features the head will read
    with torch.no_grad():
        features = torch.cat(
            [
                model.embed_both(torch.from_numpy(normalise(training.chips[sample[i : i + 512]], recipe.preprocess)))[1]
                for i in range(0, len(sample), 512)
            ]
        )
    model.train(was_training)
    for layer in layers:
        layer.set_input_statistics(features)
    log_event(logger, logging.INFO, "age head inputs standardized", features=int(features.shape[1]), images=len(sample))


def init_age_trunk(model: FlipAveragingClassifier, recipe: Recipe, training: TrainingSet) -> None:
    """The age trunk's starting weights (``model.age_trunk_init``): the last blocks of dlib's age predictor
    built at the trunk's depth (and its head, where the age head is linear over its 81 ages), or a copy of
    the network's own blocks it branches from."""
    import torch
    from footfall.models.network import ResNetDlib
    from footfall.models.pretrained import init_from_dlib_age

    assert model.age_trunk is not None
    trunk = list(model.age_trunk.children())
    if recipe.model.age_trunk_init == "features":
        blocks = list(model.features.children())[len(model.features) - model.age_branch :]
        for target, source in zip(trunk, blocks, strict=False):
            target.load_state_dict(source.state_dict())
        log_event(logger, logging.INFO, "age trunk starts as a copy of its blocks", blocks=len(blocks))
        return
    kwargs = recipe.model.kwargs
    depths = list(kwargs.get("depths", (1, 2, 1)))
    depths[-1] += int(kwargs.get("age_extra_blocks", 0))
    age_head = model.age_head
    classes = age_head.out_features if isinstance(age_head, torch.nn.Linear) else 2
    full = ResNetDlib(
        stem=kwargs.get("stem", 64), widths=kwargs.get("widths", (64, 128, 256)), depths=depths, num_classes=classes
    )
    count = len(training.chips)
    sample = np.random.default_rng(recipe.seed).choice(count, min(512, count), False)
    loaded = init_from_dlib_age(full, recipe.preprocess, training.chips[np.sort(sample)])
    blocks = list(full.features.children())[len(full.features) - len(trunk) :]
    for target, source in zip(trunk, blocks, strict=True):
        target.load_state_dict(source.state_dict())
    if loaded["head"] and isinstance(age_head, torch.nn.Linear):
        age_head.load_state_dict(full.head.state_dict())
    log_event(
        logger, logging.INFO, "age trunk starts from dlib's age predictor", blocks=len(trunk), head=loaded["head"]
    )


def fit_teacher(recipe: Recipe, training: TrainingSet) -> Teacher:
    assert recipe.distill is not None
    teacher = Teacher.fit(recipe, training.splits, list(training.val.values()), training.labels)
    probe = teacher.probe
    assert probe is not None
    log_event(
        logger,
        logging.INFO,
        "teacher ready",
        teacher=recipe.distill.teacher,
        probe_epochs=probe.epochs,
        probe_val=round(probe.val_accuracy, 4),
        **{f"probe_val_{s.dataset}": round(probe.accuracy(s.descriptors, s.labels), 4) for s in training.val.values()},
    )
    return teacher


def resume_or_start(out: Path, resume: bool, student: Student) -> dict:
    """The training state: from ``last.pt`` when resuming (the student restored with it), else a fresh one."""
    last_path = out / "last.pt"
    if resume and last_path.is_file():
        state = student.restore(load_checkpoint(last_path))
        log_event(logger, logging.INFO, "resumed", checkpoint=str(last_path), epoch=state["epoch"])
        return state
    if resume:
        log_event(logger, logging.WARNING, "nothing to resume, starting afresh", checkpoint=str(last_path))
    (out / "history.jsonl").unlink(missing_ok=True)
    return {
        "epoch": 0,
        "step": 0,
        "best_score": -1.0,
        "best_epoch": -1,
        "bad_epochs": 0,
        "history": [],
        "train_seconds": 0.0,
        "finished": False,
    }


def log_training_start(recipe: Recipe, student: Student, training: TrainingSet, schedule: Schedule) -> None:
    from footfall.models.network import count_flops, count_parameters

    log_event(
        logger,
        logging.INFO,
        "training",
        arch=recipe.model.arch,
        params=count_parameters(student.model),
        gflops=round(count_flops(student.model, recipe.preprocess.size) / 1e9, 4),
        train_images=len(training.labels),
        duplicates_dropped=training.duplicates_dropped,
        age_head=student.age_weight > 0,
        per_epoch=schedule.per_epoch,
        epochs=recipe.train.epochs,
    )


def train_epoch(
    recipe: Recipe, student: Student, training: TrainingSet, schedule: Schedule, state: dict, progress: bool
) -> tuple[float, int]:
    """One pass over this epoch's draw of the training set; returns the summed loss and the images seen. When
    the time budget runs out the pass stops there and the run is marked finished."""
    from tqdm import tqdm

    epoch = state["epoch"]
    order = epoch_order(training.weights, np.random.default_rng([recipe.seed, epoch]), schedule.cap)
    stream = BatchStream(training.chips, training.labels, order, recipe, seed=recipe.seed * 1000 + epoch)
    student.model.train()
    for part in student.frozen:  # frozen parts keep their BatchNorm statistics too
        getattr(student.model, part).eval()
    schedule.clock, running, seen = time.monotonic(), 0.0, 0
    bar = tqdm(
        stream,
        total=len(stream),
        desc=f"epoch {epoch + 1}/{recipe.train.epochs}",
        disable=not progress,
        unit="batch",
        mininterval=5,
    )
    try:
        for inputs, labels, index in bar:
            if schedule.progress(state) >= 1.0:
                state["finished"] = True  # the time budget ran out: the schedule has annealed
                break
            lr = schedule.lr_now(state)
            loss = student.step(inputs, labels, index, lr).item()
            if not math.isfinite(loss):
                # Nothing trains on from here: the run went on to the end and failed on its calibration.
                what = "NaN" if math.isnan(loss) else "infinite"
                raise RecipeError(
                    f"loss became {what} at epoch {epoch + 1} (train.lr {recipe.train.lr:g} too high?); stopping"
                )
            state["step"] += 1
            student.update_average(min(recipe.train.ema_decay, (1 + state["step"]) / (10 + state["step"])))
            running += loss * len(labels)
            seen += len(labels)
            bar.set_postfix(loss=f"{running / seen:.4f}", lr=f"{lr:.2e}", refresh=False)
    finally:
        stream.close()
        bar.close()
    return running, seen


def record_epoch(
    recipe: Recipe,
    out: Path,
    student: Student,
    training: TrainingSet,
    schedule: Schedule,
    state: dict,
    loss_sum: float,
    seen: int,
    started: float,
) -> bool:
    """Scores the weight average on validation, counts the epoch (best so far, or one more without
    improvement) and appends it to ``history.jsonl``; returns whether it is the best yet."""
    epoch = state["epoch"]
    epoch_seconds = time.monotonic() - schedule.clock
    state["train_seconds"] += epoch_seconds
    schedule.clock = time.monotonic()
    scores, maes = validate(student.ema, training.val, recipe.preprocess)
    score = float(np.mean(list(scores.values())))
    state["epoch"] = epoch + 1
    # Gender accuracy picks the epoch; with an age head, equal gender accuracy goes to the lower age error.
    age_error = float(np.mean(list(maes.values()))) if maes else 0.0
    improved = score > state["best_score"] or (
        score == state["best_score"] and age_error < state.get("best_age_error", np.inf)
    )
    if improved:
        state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0, best_age_error=age_error)
    else:
        state["bad_epochs"] += 1
    record = {
        "epoch": epoch + 1,
        "loss": loss_sum / max(seen, 1),
        "val_accuracy": scores,
        "val_age_mae": maes,
        "score": score,
        "images": seen,
        "progress": round(schedule.progress(state), 3),
        "seconds": round(epoch_seconds, 1),
        "elapsed_min": round((time.monotonic() - started) / 60, 2),
    }
    state["history"].append(record)
    with (out / "history.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    log_event(
        logger,
        logging.INFO,
        "epoch done",
        **{k: v for k, v in record.items() if k not in ("val_accuracy", "val_age_mae")},
        **{f"val_{k}": round(v, 4) for k, v in scores.items()},
        **{f"val_mae_{k}": round(v, 2) for k, v in maes.items()},
        best_epoch=state["best_epoch"],
    )
    return improved


def save_epoch_checkpoints(recipe: Recipe, out: Path, student: Student, state: dict, improved: bool) -> None:
    """``best.pt`` (the weight average) when the epoch improved; always ``last.pt``, which can be resumed."""
    checkpoint = base_checkpoint(recipe, student.ema)
    if improved:
        save_checkpoint(checkpoint, out / "best.pt")
    checkpoint["resume"] = student.resume_point(state)
    save_checkpoint(checkpoint, out / "last.pt")


def base_checkpoint(recipe: Recipe, weights_model: nn.Module) -> dict:
    """A checkpoint of ``weights_model`` before calibration (temperature 1, threshold 0.5, no figures)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "arch": recipe.model.arch,
        "arch_kwargs": dict(recipe.model.kwargs),
        "state_dict": {k: v.detach().clone().contiguous() for k, v in weights_model.state_dict().items()},
        "preprocess": recipe.preprocess.model_dump(),
        "labels": list(recipe.labels),
        "temperature": 1.0,
        "abstain_threshold": 0.5,
        "metrics": {},
        "training_data": list(recipe.training_data),
        "data_terms": recipe.data_terms,
        "recipe": json.loads(recipe.model_dump_json()),
        "seed": recipe.seed,
    }


def run_summary(recipe: Recipe, state: dict, started: float, resumed: bool) -> dict:
    """How the run went, kept in the final checkpoint's recipe (the model card's *Run* line)."""
    return {
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "images": int(sum(r.get("images", 0) for r in state["history"])),
        "train_minutes": round(state["train_seconds"] / 60, 1),
        "process_minutes": round((time.monotonic() - started) / 60, 1),
        "resumed": bool(resumed),
        "stopped_by": (
            "time budget"
            if state["finished"]
            else "early stopping"
            if state["bad_epochs"] >= recipe.train.patience
            else "epochs"
        ),
        "history": state["history"],
    }


def choose_geometry(recipe: Recipe, model, data: dict[str, dict[str, SplitData]]):
    """The crop geometry (margin, vertical shift), with or without mirror averaging, that has the best mean
    val accuracy among the recipe's candidates (the training geometry without mirroring first: it wins
    ties). Validation only; test is not looked at. Returns (spec, flip_average, data, search table)."""
    spec = recipe.preprocess
    candidates = [(spec.margin, spec.center_shift_y)]
    candidates += [c for c in recipe.calibration.geometry_candidates if tuple(c) != candidates[0]]
    flips = (False, True) if recipe.calibration.try_flip_average else (False,)
    best, search = None, []
    for margin, shift in candidates:
        trial = spec.model_copy(update={"margin": float(margin), "center_shift_y": float(shift)})
        trial_data = (
            data if trial == spec else load_splits(recipe.model_copy(update={"preprocess": trial}), progress=False)[0]
        )
        logits = {n: predict_logits(model, d["val"].chips, trial) for n, d in trial_data.items()}
        mirrored = (
            {n: predict_logits(model, d["val"].chips[:, :, ::-1], trial) for n, d in trial_data.items()}
            if True in flips
            else {}
        )
        for flip in flips:
            scores = {
                n: float((((logits[n] + mirrored[n]) / 2 if flip else logits[n]).argmax(1) == d["val"].labels).mean())
                for n, d in trial_data.items()
            }
            row = {
                "margin": float(margin),
                "center_shift_y": float(shift),
                "flip_average": flip,
                "val_accuracy": scores,
                "score": float(np.mean(list(scores.values()))),
            }
            search.append(row)
            log_event(
                logger,
                logging.INFO,
                "geometry",
                margin=margin,
                center_shift_y=shift,
                flip_average=flip,
                score=round(row["score"], 4),
                **{f"val_{k}": round(v, 4) for k, v in scores.items()},
            )
            if best is None or row["score"] > best[0]:
                best = (row["score"], trial, flip, trial_data)
    assert best is not None
    return best[1], best[2], best[3], search


def balancing_bias(val_logits: dict[str, np.ndarray], val_labels: dict[str, np.ndarray]) -> float:
    """The shift of the female logit (label 0) that makes female and male recall equal on validation: the
    mean over the datasets of |female recall − male recall| is least (ties: the smallest shift)."""
    best, best_gap = 0.0, np.inf
    for bias in sorted(np.round(np.arange(-2.0, 2.0001, 0.01), 2), key=abs):
        gaps = []
        for name, logits in val_logits.items():
            labels = val_labels[name]
            decided = (logits + np.array([bias, 0.0])).argmax(1)
            recalls = [(decided[labels == c] == c).mean() for c in (0, 1) if (labels == c).any()]
            if len(recalls) == 2:
                gaps.append(abs(recalls[0] - recalls[1]))
        gap = float(np.mean(gaps)) if gaps else 0.0
        if gap < best_gap - 1e-12:
            best, best_gap = float(bias), gap
    return best


def calibrate_age(
    recipe: Recipe,
    data: dict[str, dict[str, SplitData]],
    age_logits: dict[str, dict[str, np.ndarray]],
) -> dict:
    """The age head's band threshold, on validation faces of known age, and its figures per split
    (``metrics``: ``<split>_<dataset>``): the checkpoint's ``age`` entry.

    No temperature is fitted (it stays 1): dividing the logits would move the estimate (the median age)
    towards the middle of the range; the threshold alone sets how often a band decision abstains."""
    from footfall.core.classifier import softmax
    from footfall.models.age_metrics import age_report, band_matrix, choose_band_threshold

    width = next(iter(age_logits.values()))["val"].shape[1]
    grid = np.arange(width, dtype=np.float64)
    val = np.concatenate([age_logits[n]["val"] for n in data])
    ages = np.concatenate([data[n]["val"].ages for n in data])
    known = ~np.isnan(ages)
    temperature = 1.0
    threshold = choose_band_threshold(
        softmax(val[known], temperature) @ band_matrix(grid),
        ages[known],
        target_accuracy=recipe.calibration.age_target_accuracy,
        max_abstention=recipe.calibration.age_max_abstention,
    )
    metrics = {}
    for name in data:
        for split in ("val", "test"):
            probs = softmax(age_logits[name][split], temperature)
            metrics[f"{split}_{name}"] = age_report(probs, data[name][split].ages, grid, threshold)
    log_event(
        logger,
        logging.INFO,
        "age calibrated",
        band_threshold=round(threshold, 4),
        **{f"{k}_mae": round(v["mae"], 2) for k, v in metrics.items() if v.get("n")},
    )
    return {
        "ages": grid.tolist(),
        "temperature": float(temperature),
        "band_threshold": float(threshold),
        "metrics": metrics,
    }


def finalize(
    recipe: Recipe,
    best_path: Path,
    data: dict[str, dict[str, SplitData]],
    detector_reports: dict,
    out: Path,
    summary: dict | None = None,
    publish: Path | None = None,
) -> Path:
    """Temperature and threshold on validation; figures on val and test; the final checkpoint, also written to
    ``publish`` when given."""
    from footfall.core.classifier import softmax
    from footfall.models.checkpoint import model_from_checkpoint

    checkpoint = load_checkpoint(best_path)
    spec, flip, data, search = choose_geometry(recipe, model_from_checkpoint(checkpoint), data)
    checkpoint["preprocess"] = spec.model_dump()
    checkpoint["arch_kwargs"] = {**checkpoint["arch_kwargs"], "flip_average": flip}
    model = model_from_checkpoint(checkpoint)
    checkpoint["recipe"]["geometry_search"] = search
    has_age = getattr(model, "age_head", None) is not None
    logits: dict[str, dict[str, np.ndarray]] = {}
    age_logits: dict[str, dict[str, np.ndarray]] = {}
    for n, splits in data.items():
        logits[n], age_logits[n] = {}, {}
        for s, d in splits.items():
            if s == "train":
                continue
            if has_age:
                logits[n][s], age_logits[n][s] = predict_both(model, d.chips, spec)
            else:
                logits[n][s] = predict_logits(model, d.chips, spec)
    if recipe.calibration.balance_recall:
        bias = balancing_bias({n: logits[n]["val"] for n in data}, {n: data[n]["val"].labels for n in data})
        for n in data:
            for s in logits[n]:
                logits[n][s] = logits[n][s] + np.array([bias, 0.0], np.float32)
        # Folded into the head, so the shipped graph itself decides with balanced recall.
        checkpoint["state_dict"]["head.bias"][0] += bias
        checkpoint["recipe"]["recall_bias"] = bias
        log_event(logger, logging.INFO, "recall balanced", female_logit_bias=round(bias, 4))
    val_logits = np.concatenate([logits[n]["val"] for n in data])
    val_labels = np.concatenate([data[n]["val"].labels for n in data])
    val_ages = np.concatenate([data[n]["val"].ages for n in data])
    temperature = fit_temperature(val_logits, val_labels)
    val_probs = softmax(val_logits, temperature)
    min_age = recipe.calibration.threshold_min_age
    adults = ~(val_ages < min_age) if min_age is not None else np.ones(len(val_labels), bool)
    threshold = choose_threshold(
        val_probs[adults],
        val_labels[adults],
        target_accuracy=recipe.calibration.target_accuracy,
        max_abstention=recipe.calibration.max_abstention,
    )
    metrics: dict[str, dict] = {"val": binary_report(val_labels, val_probs, threshold)}
    for name in data:
        for split in ("val", "test"):
            probs = softmax(logits[name][split], temperature)
            metrics[f"{split}_{name}"] = binary_report(data[name][split].labels, probs, threshold)
    metrics["val"]["temperature"] = temperature
    if has_age:
        checkpoint["age"] = calibrate_age(recipe, data, age_logits)
    checkpoint.update(temperature=float(temperature), abstain_threshold=float(threshold), metrics=metrics)
    checkpoint["recipe"]["detector_report"] = detector_reports
    if summary is not None:
        checkpoint["recipe"]["history_summary"] = summary
    final = out / "model.pt"
    save_checkpoint(checkpoint, final)
    if publish is not None:
        save_checkpoint(checkpoint, publish)
        log_event(logger, logging.INFO, "published", checkpoint=str(publish))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log_event(
        logger,
        logging.INFO,
        "calibrated",
        temperature=round(temperature, 4),
        threshold=round(threshold, 4),
        **{f"{k}_acc": round(v["accuracy"], 4) for k, v in metrics.items()},
    )
    return final
