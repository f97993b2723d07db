"""The committed default gender bundle, evaluated on the real test splits through the edge's path.

The figures are computed here (nothing hard-coded): they must equal the model card's, and every target
the card reports as met must hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from footfall.core.paths import DEFAULT_GENDER_BUNDLE
from footfall.models.card import TARGETS, meets, read_card_metrics
from footfall.models.recipe import REPO_ROOT

CARD = REPO_ROOT / "models" / "MODEL_CARD.md"
DATASETS = {"utkface": "utkface-112", "wiki": "wiki-144"}


@pytest.fixture(scope="module")
def test_reports(data_dir: Path) -> dict[str, dict]:
    from footfall.models.evaluate import evaluate_bundle

    if not (DEFAULT_GENDER_BUNDLE / "manifest.json").is_file():
        pytest.fail(f"the default gender bundle is missing: {DEFAULT_GENDER_BUNDLE}")
    return {
        name: evaluate_bundle(
            DEFAULT_GENDER_BUNDLE,
            data_dir / f"{stem}.csv",
            data_dir / f"{stem}.zip",
            split="test",
            progress=False,
        )
        for name, stem in DATASETS.items()
    }


@pytest.mark.slow
@pytest.mark.data
def test_card_figures_are_what_evaluate_computes(test_reports: dict[str, dict]) -> None:
    card = read_card_metrics(CARD.read_text())
    assert set(card) == set(DATASETS)
    for name, report in test_reports.items():
        for measure, value in card[name].items():
            assert report["metrics"][measure] == pytest.approx(value, abs=2e-3), f"{name} {measure}"


@pytest.mark.slow
@pytest.mark.data
def test_targets_the_card_claims_hold(test_reports: dict[str, dict]) -> None:
    card = read_card_metrics(CARD.read_text())
    claimed = 0
    for target in TARGETS:
        card_value = card[target["split"]].get(target["measure"])
        if card_value is None or not meets(card_value, target["op"], target["must"]):
            continue  # the card reports this target as missed; nothing to hold the model to
        claimed += 1
        value = test_reports[target["split"]]["metrics"][target["measure"]]
        assert meets(value, target["op"], target["must"]), f"{target['name']}: {value}"
    # Whatever the card claims, the shipped model must beat a coin flip by far on both test splits.
    for name, report in test_reports.items():
        assert report["metrics"]["accuracy"] > 0.8, name
        assert report["metrics"]["roc_auc"] > 0.9, name
