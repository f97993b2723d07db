"""``footfall train`` and ``footfall evaluate`` (light module: typer and the standard library only at import
time; torch, onnxruntime and OpenCV are imported when a command runs)."""

from __future__ import annotations

from pathlib import Path

import typer


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        config: Path = typer.Option(..., "--config", "-c", help="Training recipe (YAML)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from <out>/last.pt if it exists."),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="Run folder (default: the recipe's 'output'). A folder of its own makes the run an experiment: "
            "its model.pt stays there, and the recipe's final_checkpoint (for the shipped recipes, the shipped "
            "checkpoint in models/checkpoints) is left as it is.",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    ) -> None:
        """Train a gender model from a recipe: face chips are cut once with the edge's detector and
        pre-processing and cached; then training with augmentation, a checkpoint per epoch, early stopping
        on validation, temperature scaling and the abstention threshold on validation, test figures.

        Example: footfall train --config models/configs/audience-v7.yaml
        """
        from footfall.core.extras import require

        require("train", "torch", "cv2", "onnxruntime", "tqdm", "yaml")
        from footfall.core.bundle import BundleError
        from footfall.core.outpaths import OutputPathError
        from footfall.models.checkpoint import CheckpointError
        from footfall.models.datasets import DatasetError
        from footfall.models.pretrained import PretrainedError
        from footfall.models.recipe import RecipeError, load_recipe, resolve
        from footfall.models.train import published_checkpoint, train

        try:
            recipe = load_recipe(config)
            final = train(recipe, resume=resume, out_dir=out, progress=progress)
        except (RecipeError, DatasetError, CheckpointError, BundleError, PretrainedError, OutputPathError) as exc:
            _fail(str(exc))
        typer.echo(f"checkpoint: {final}")
        published = published_checkpoint(recipe, out)
        if published is not None:
            typer.echo(f"published:  {published} (the recipe's final_checkpoint)")
        elif recipe.final_checkpoint:
            typer.echo(
                f"not published: the recipe's final_checkpoint ({resolve(recipe.final_checkpoint, recipe)}) is left as "
                "it was, as --out gave this run a folder of its own; copy the checkpoint there to publish it"
            )

    @app.command("evaluate")
    def evaluate_command(
        bundle: Path = typer.Option(..., "--bundle", help="Exported gender bundle folder (what the edge runs)."),
        csv: Path = typer.Option(..., "--csv", help="CSV with path, gender[, age, race, split]."),
        images: Path = typer.Option(..., "--images", help="Folder or zip holding the CSV's paths."),
        split: str | None = typer.Option(None, "--split", help="Only rows of this split (e.g. test)."),
        json_out: Path | None = typer.Option(None, "--json", help="Write all figures as JSON here."),
        plots: Path | None = typer.Option(None, "--plots", help="Write PNG plots into this folder."),
        detector: Path | None = typer.Option(None, "--detector", help="Detector bundle (default: shipped)."),
        reference: bool = typer.Option(
            False,
            "--reference",
            help="Run both bundles' FP32 reference graphs (detector and classifier): figures that do not "
            "depend on the CPU's integer kernels.",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Evaluate an exported bundle on labelled images through the edge's own path: face detector,
        shared crop and normalisation, ONNX classifier, calibrated decision with abstention. An image
        where no face is found is classified from the whole image and still counts.

        Prints n, accuracy, balanced accuracy, F1, ROC AUC, ECE, the confusion matrix, abstention and
        accuracy on answered cases, and per-group tables (race; age bands when ages are known).

        Example: footfall evaluate --bundle models/bundles/audience-v7 --csv ../shared/data/wiki-144.csv
        --images ../shared/data/wiki-144.zip --split test --json wiki-test.json --plots plots/wiki
        """
        from footfall.core.extras import require

        require("edge", "cv2", "onnxruntime", "tqdm")
        if plots is not None:
            require("train", "matplotlib")
        from footfall.core.bundle import BundleError
        from footfall.core.outpaths import OutputPathError, writable_file, writable_folder
        from footfall.models.datasets import SPLITS, DatasetError
        from footfall.models.evaluate import EvaluationError, evaluate_bundle, format_report, write_outputs

        if split is not None and split.lower() not in SPLITS:
            raise typer.BadParameter(f"choose one of {', '.join(SPLITS)}", param_hint="--split")
        try:  # before the run: an output found unwritable at its end would throw the whole evaluation away
            if json_out is not None:
                writable_file(json_out, inputs=[csv, images])
            if plots is not None:
                writable_folder(plots)
        except OutputPathError as exc:
            _fail(str(exc))
        try:
            report = evaluate_bundle(
                bundle,
                csv,
                images,
                split=None if split is None else split.lower(),
                detector_bundle=detector,
                reference=reference,
                progress=progress,
            )
            typer.echo(format_report(report))
            write_outputs(report, json_out, plots)
        except (BundleError, DatasetError, EvaluationError, OSError) as exc:
            _fail(str(exc))
