"""The corrected female share that ``footfall process`` reports beside its raw counts.

Counting the people decided female (classify and count) leans towards whichever gender the classifier
mistakes or leaves ``unknown`` less often. The gender bundle's manifest carries its decision rates (how often
a true woman, and a true man, is decided female, male or unknown, measured on walk-by clips of validation
faces); core.quantify turns a crowd's decisions and those rates into the corrected share with a 95 % interval
that holds both sampling and the rates' uncertainty, ``unknown`` people counting through their expected
split. Here: one estimate per zone and line (their passes), and one for the camera's distinct visitors, the
crowd the overall share is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footfall.core.quantify import DecisionCounts, DecisionRates, ShareEstimate, corrected_share

METHOD = (
    "corrected female share: corrected for the gender bundle's decision rates (how often it decides a true woman "
    "or man female, male or unknown, measured on walk-by clips of validation faces); 95 % interval over sampling "
    "and the rates' uncertainty; unknown people count through their expected split. raw: female / (female + male)"
)


def share_of(counts: Mapping[str, Any], rates: DecisionRates) -> ShareEstimate:
    """The corrected share of one crowd from its raw female, male and unknown counts."""
    decisions = DecisionCounts(int(counts["female"]), int(counts["male"]), int(counts["unknown"]))
    return corrected_share([(decisions, rates)])


def estimate_json(estimate: ShareEstimate) -> dict[str, Any]:
    """One estimate as JSON: shares as fractions (4 decimals), None where there is none and why."""

    def fraction(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    why = None
    if estimate.people == 0:
        why = "nobody was counted"
    elif not estimate.fits:
        why = "these decisions are unlike any mix of the bundle's rates (e.g. far more unknown than it ever leaves)"
    return {
        "people": estimate.people,
        "raw": fraction(estimate.raw),
        "share": fraction(estimate.share),
        "low": fraction(estimate.low),
        "high": fraction(estimate.high),
        "why_none": why,
    }


def female_share_section(
    camera_visitors: Mapping[str, Any],
    zones: Mapping[str, Mapping[str, Any]],
    classifier: str | None,
    rates: DecisionRates | None,
) -> dict[str, Any]:
    """The ``female_share`` part of the process summary: the method, which bundle's rates, and the corrected
    share of the camera's visitors (overall) and of each zone's and line's passes; or why there is none."""
    section: dict[str, Any] = {"classifier": classifier, "method": METHOD, "rates_source": None}
    if classifier is None:
        return section | {"why_none": "no classifier ran: nobody's gender was decided"}
    if rates is None:
        return section | {
            "why_none": f"the gender bundle {classifier} carries no decision rates in its manifest "
            "(bench/calibrate_tracks.py --write measures them), so only the raw counts are reported"
        }
    return section | {
        "rates_source": rates.source,
        "why_none": None,
        "camera_visitors": estimate_json(share_of(camera_visitors, rates)),
        "zones": {zone_id: estimate_json(share_of(counts, rates)) for zone_id, counts in zones.items()},
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _corrected_cell(estimate: Mapping[str, Any] | None) -> str:
    if estimate is None:
        return "-"
    if estimate["share"] is None:
        return "n/a" if estimate["people"] else "-"
    return f"{_percent(estimate['share'])} ({100 * estimate['low']:.1f}-{100 * estimate['high']:.1f} %)"


def format_table(summary: Mapping[str, Any]) -> str:
    """The process summary as a table for people: raw counts and both shares per crowd, the method below."""
    section = summary.get("female_share") or {}
    # No classifier ran (counts-only): nobody's gender was decided, so there is no female, male or unknown to show;
    # the people are counted, not people the model was unsure of.
    classified = section.get("classifier") is not None
    rows = [("camera " + str(summary["camera_id"]) + " visitors", summary["camera_visitors"], "camera_visitors")]
    rows += [(f"zone/line {zone_id} passes", counts, zone_id) for zone_id, counts in summary["zones"].items()]
    header = ("crowd", "people", "female", "male", "unknown", "raw female share", "corrected (95 % interval)")
    lines: list[tuple[str, ...]] = [header]
    for name, counts, key in rows:
        estimate = section.get("camera_visitors") if key == "camera_visitors" else section.get("zones", {}).get(key)
        decided = counts["female"] + counts["male"]
        raw = counts["female"] / decided if decided and classified else None
        genders = [str(counts[gender]) if classified else "-" for gender in ("female", "male", "unknown")]
        lines.append((name, str(counts["people"]), *genders, _percent(raw), _corrected_cell(estimate)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
        for line in lines
    ]
    text.append("overall: the camera's distinct visitors, each person once (zone and line passes never add up to it)")
    # Entrance lines count in and out, not passes: a line of their own (a new-user review found them in the JSON only).
    entrances = summary.get("entrances") or {}
    if entrances:
        text.append(
            "entrances: "
            + "; ".join(f"{line_id} in {counts['in']}, out {counts['out']}" for line_id, counts in entrances.items())
        )
    if not classified:
        text.append(f"gender: not decided ({section.get('why_none') or 'no classifier ran'})")
        return "\n".join(text)
    text.append(METHOD)
    if section.get("why_none"):
        text.append(f"no corrected share: {section['why_none']}")
    elif section.get("classifier"):
        text.append(f"rates of {section['classifier']}: {section['rates_source']}")
    if any(
        e and e.get("why_none") and e["people"]
        for e in [section.get("camera_visitors"), *section.get("zones", {}).values()]
    ):
        text.append("n/a: the decisions are unlike any mix of the bundle's rates, so no correction is offered")
    return "\n".join(text)
