"""``footfall process`` reports the female share corrected for the gender bundle's decision rates beside the raw
counts: in its JSON (camera visitors and each zone and line) and in the table it prints, saying what the
figure is; and says why there is none when the bundle has no rates or no classifier ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from footfall.core.classifier import GenderClassifier
from footfall.core.detector import FaceDetector
from footfall.core.quantify import DecisionRates
from footfall.edge.config import AgentConfig, CameraConfig, ZoneConfig
from footfall.edge.female_share import female_share_section, format_table
from footfall.edge.offline import process_video
from footfall.edge.pipeline import Models

from tests.edge.standin import build_standin_gender_bundle
from tests.edge.test_process_video import FPS, BrightSquareDetector, write_clip

# Women are read as men twice as often as men as women: counting leans male.
LEANS_MALE = DecisionRates(
    counts={"female": {"female": 400, "male": 50, "unknown": 50}, "male": {"female": 25, "male": 450, "unknown": 25}},
    source="synthetic rates for a test",
)


def _summary(visitors: dict, zones: dict, classifier: str | None, rates: DecisionRates | None) -> dict:
    return {
        "camera_id": "cam1",
        "camera_visitors": visitors,
        "zones": zones,
        "female_share": female_share_section(visitors, zones, classifier, rates),
    }


def test_the_corrected_share_undoes_a_known_lean_and_is_printed_beside_the_raw_counts() -> None:
    # 600 women and 400 men decided as LEANS_MALE decides on average: 480 + 10 female, 60 + 360 male.
    visitors = {"people": 1000, "female": 490, "male": 420, "unknown": 90}
    zones = {"hall": {"people": 20, "female": 9, "male": 9, "unknown": 2}, "quiet": dict.fromkeys(visitors, 0)}
    summary = _summary(visitors, zones, "gender-v9@1.0.0", LEANS_MALE)
    section = summary["female_share"]
    overall = section["camera_visitors"]
    assert overall["raw"] == pytest.approx(490 / 910, abs=1e-4)
    assert overall["share"] == pytest.approx(0.60, abs=0.01)
    assert overall["low"] < 0.60 < overall["high"] and not overall["low"] < overall["raw"] < overall["high"]
    hall = section["zones"]["hall"]
    assert hall["high"] - hall["low"] > 3 * (overall["high"] - overall["low"]), "20 people: a wider interval"
    assert section["zones"]["quiet"] == {
        "people": 0,
        "raw": None,
        "share": None,
        "low": None,
        "high": None,
        "why_none": "nobody was counted",
    }
    assert section["classifier"] == "gender-v9@1.0.0" and section["rates_source"] == "synthetic rates for a test"
    json.dumps(summary)  # the process summary is one JSON line

    table = format_table(summary).splitlines()
    camera_row = next(line for line in table if line.startswith("camera cam1 visitors"))
    assert "53.8 %" in camera_row  # raw, beside the corrected share and its interval
    assert f"{100 * overall['share']:.1f} % ({100 * overall['low']:.1f}-{100 * overall['high']:.1f} %)" in camera_row
    assert any(line.startswith("zone/line hall passes") for line in table)
    text = "\n".join(table)
    assert "decision rates" in text and "95 % interval over sampling and the rates' uncertainty" in text
    assert "overall: the camera's distinct visitors" in text
    assert "entrances:" not in text  # no entrance line, no line of them
    summary["entrances"] = {"west-entrance": {"in": 5, "out": 4}}  # a new-user review found them in the JSON only
    assert "entrances: west-entrance in 5, out 4" in format_table(summary).splitlines()


def test_decisions_the_rates_cannot_explain_get_no_corrected_share() -> None:
    # Everyone unknown although the bundle leaves 5-10 % unknown: no confident answer to the wrong model.
    visitors = {"people": 400, "female": 0, "male": 0, "unknown": 400}
    summary = _summary(visitors, {}, "gender-v9@1.0.0", LEANS_MALE)
    overall = summary["female_share"]["camera_visitors"]
    assert overall["share"] is None and overall["people"] == 400 and "unlike" in overall["why_none"]
    assert "n/a" in format_table(summary)


def test_without_rates_or_without_a_classifier_the_output_says_why() -> None:
    visitors = {"people": 3, "female": 1, "male": 1, "unknown": 1}
    no_rates = _summary(visitors, {}, "gender-v9@1.0.0", None)
    assert "carries no decision rates" in no_rates["female_share"]["why_none"]
    assert "camera_visitors" not in no_rates["female_share"]
    assert "no corrected share: the gender bundle gender-v9@1.0.0 carries no decision rates" in format_table(no_rates)
    no_classifier = _summary({"people": 3, "female": 0, "male": 0, "unknown": 3}, {}, None, None)
    assert "no classifier ran" in no_classifier["female_share"]["why_none"]
    # Counts-only: nobody's gender was decided, so the table shows no female, male or unknown (3 'unknown' read as
    # people the model was unsure of) and no correction method.
    table = format_table(no_classifier)
    row = next(line for line in table.splitlines() if line.startswith("camera cam1 visitors")).split()
    assert row[3:8] == ["3", "-", "-", "-", "-"], row
    assert "gender: not decided (no classifier ran" in table and "decision rates" not in table


def test_process_video_carries_the_corrected_share_of_its_bundle(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    bundle = build_standin_gender_bundle(tmp_path / "gender-standin")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["classifier"]["decision_rates"] = LEANS_MALE.model_dump()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    clip = tmp_path / "walkers.avi"
    write_clip(clip, [(20, 80, 60, 0), (20, 80, 120, 45), (300, -80, 90, 70)], frames=150)
    camera = CameraConfig(
        id="cam1",
        source=str(clip),
        realtime=False,
        fps=FPS,
        zones=[ZoneConfig(id="west", polygon=[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])],
    )
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=10)
    models = Models(cast(FaceDetector, BrightSquareDetector()), GenderClassifier(bundle))
    aggregates: list = []
    summary = process_video(clip, config, progress=False, models=models, start_time=0.0, aggregates=aggregates)

    section = summary["female_share"]
    assert section["classifier"] == "gender-standin@0.0.0" and section["why_none"] is None
    assert section["camera_visitors"]["people"] == summary["camera_visitors"]["people"] == 3
    assert set(section["zones"]) == set(summary["zones"]) == {"west"}
    assert {m.classifier for m in aggregates} == {"gender-standin@0.0.0"}, "each aggregate names its bundle"
    json.dumps(summary)
