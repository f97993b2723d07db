"""The model card's age and per-gender recall sections, from ``footfall evaluate`` reports (``report["age"]``) and
the anchor's figures (``bench/age_anchor.py --json``)."""

from __future__ import annotations

from typing import Any

from footfall.core.ages import AGE_BANDS

# Targets of the age head (issue 17): measure, split, comparison, value; all through the INT8 edge path.
AGE_TARGETS: list[dict[str, Any]] = [
    {"name": "age MAE, UTKFace test", "split": "utkface", "measure": "mae", "op": "<=", "value": 5.0, "unit": "years"},
    {"name": "age MAE, wiki test", "split": "wiki", "measure": "mae", "op": "<=", "value": 6.0, "unit": "years"},
    {"name": "band accuracy, UTKFace test", "split": "utkface", "measure": "band_accuracy", "op": ">=", "value": 0.6},
    {"name": "within one band, UTKFace test", "split": "utkface", "measure": "within_one_band", "op": ">=",
     "value": 0.9},
    {"name": "children (0-12) recall, UTKFace test", "split": "utkface", "measure": "children_recall", "op": ">=",
     "value": 0.9},
]  # fmt: skip


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f} %"


def _value(value: float, unit: str | None) -> str:
    return f"{value:.2f} {unit}" if unit else _pct(value)


def recall_lines(reports: dict[str, dict]) -> list[str]:
    """Female and male recall on each test split (every face by its most likely label), and their gap."""
    lines = [
        "",
        "### Recall per gender",
        "",
        "| split | female recall | male recall | gap (points) |",
        "| --- | --- | --- | --- |",
    ]
    for name, report in reports.items():
        (ff, fm), (mf, mm) = report["confusion_matrix"]
        female, male = ff / max(ff + fm, 1), mm / max(mf + mm, 1)
        lines.append(f"| {name} test | {_pct(female)} | {_pct(male)} | {100 * (female - male):+.2f} |")
    return lines


def slice_lines(reports: dict[str, dict]) -> list[str]:
    """Female and male recall per third of each measured face attribute (footfall.models.slices)."""
    from footfall.models.slices import ATTRIBUTES

    if not any(r.get("slices") for r in reports.values()):
        return []
    lines = [
        "",
        "### Error slices",
        "",
        "Where each gender's faces are lost: every test face by its most likely label, in thirds of a measured "
        "attribute (this split's own terciles). The datasets carry no hair, glasses or expression labels, so "
        "those slices are not measured.",
        "",
        "| split | attribute | third (range) | n | female recall | male recall | gap (points) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, report in reports.items():
        for attribute, rows in report.get("slices", {}).items():
            for row in rows:
                lines.append(
                    f"| {name} | {attribute} | {row['third']} ({row['range']}) | {row['n']} | "
                    f"{_pct(row['female_recall'])} | {_pct(row['male_recall'])} | {row['gap_points']:+.2f} |"
                )
    lines += ["", *(f"- {attribute}: {what}" for attribute, what in ATTRIBUTES.items())]
    return lines


def age_section(
    reports: dict[str, dict], reference_reports: dict[str, dict] | None, anchor: dict[str, dict] | None
) -> list[str]:
    """Age figures of each test split (shipped graphs, FP32 reference beside them), the targets, per-group
    tables and the band confusion; nothing for a bundle without an age head."""
    if not any(r.get("age", {}).get("n") for r in reports.values()):
        return []
    lines = [
        "",
        "## Age",
        "",
        "A second head on the same network's features gives a distribution over ages 0-80 years (the last: 80 or "
        "more); its median is the age estimate and the band with the most probability the band. A band decision "
        "abstains (`unknown`) below the band threshold chosen on validation. Figures from `footfall evaluate` over the "
        "faces of known age, through the edge's path; band accuracy and the confusion count every face by its "
        "most likely band. The anchor is dlib's age predictor (the network this model starts from) on the same "
        "faces and crops (`bench/age_anchor.py`). On the box, band COUNTS are not these per-face decisions: each "
        "band's count follows the sum of the people's band probabilities (`edge/band_allotment.py`).",
        "",
        "| measure | " + " | ".join(_columns(reports, reference_reports, anchor)) + " |",
        "| --- |" + " --- |" * len(_columns(reports, reference_reports, anchor)),
    ]
    rows = (
        ("faces of known age", "n", None),
        ("MAE (years)", "mae", "years"),
        ("band accuracy", "band_accuracy", None),
        ("within one band", "within_one_band", None),
        ("band abstention", "band_abstention", None),
        ("answered band accuracy", "answered_band_accuracy", None),
        ("children (0-12) recall", "children_recall", None),
        ("children decided 0-12 (threshold applied)", "children_decided_recall", None),
    )
    for title, key, unit in rows:
        cells = []
        for figures in _figures(reports, reference_reports, anchor):
            value = figures.get(key)
            cells.append(
                "–" if value is None else str(value) if key == "n" else f"{value:.2f}" if unit else _pct(value)
            )
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "### Age targets", "", "| target | required | measured | verdict |", "| --- | --- | --- | --- |"]
    for target in AGE_TARGETS:
        figures = reports.get(target["split"], {}).get("age", {})
        if target["measure"] not in figures:
            continue
        value = figures[target["measure"]]
        met = value <= target["value"] if target["op"] == "<=" else value >= target["value"]
        lines.append(
            f"| {target['name']} | {target['op']} {_value(target['value'], target.get('unit'))} | "
            f"{_value(value, target.get('unit'))} | {'met' if met else '**missed**'} |"
        )
    for name, report in reports.items():
        age = report.get("age", {})
        if not age.get("n"):
            continue
        lines += [
            "",
            f"### Age per group, {name} test",
            "",
            "| group | n | MAE | band accuracy | within one band | children recall |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key in ("by_gender", "by_race"):
            for group, row in age.get(key, {}).items():
                lines.append(
                    f"| {group} | {row['n']} | {row['mae']:.2f} | {_pct(row['band_accuracy'])} | "
                    f"{_pct(row['within_one_band'])} | {_pct(row['children_recall'])} |"
                )
        lines += [
            "",
            f"Band confusion, {name} test (rows true, columns most likely band):",
            "",
            "| true \\ predicted | " + " | ".join(AGE_BANDS) + " |",
            "| --- |" + " --- |" * len(AGE_BANDS),
        ]
        for band, row in zip(AGE_BANDS, age["band_confusion"], strict=True):
            lines.append(f"| {band} | " + " | ".join(str(v) for v in row) + " |")
    return lines


def _columns(
    reports: dict[str, dict], reference_reports: dict[str, dict] | None, anchor: dict[str, dict] | None
) -> list[str]:
    columns = []
    for name, report in reports.items():
        columns.append(f"{name} test {report.get('precision', '')}".strip())
        if reference_reports and name in reference_reports:
            columns.append(f"{name} test FP32 reference")
        if anchor and f"test_{name}" in anchor:
            columns.append(f"{name} test, dlib age predictor")
    return columns


def _figures(
    reports: dict[str, dict], reference_reports: dict[str, dict] | None, anchor: dict[str, dict] | None
) -> list[dict]:
    figures = []
    for name, report in reports.items():
        figures.append(report.get("age", {}))
        if reference_reports and name in reference_reports:
            figures.append(reference_reports[name].get("age", {}))
        if anchor and f"test_{name}" in anchor:
            figures.append(anchor[f"test_{name}"])
    return figures
