"""`footfall notice` renders a self-contained entrance notice with the site's details escaped, and the
compliance kit in docs/compliance/ exists and is linked from the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from footfall.cli import app
from footfall.notice import NoticeFacts, render_notice

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "docs" / "compliance"
runner = CliRunner()


def notice(*args: str) -> str:
    result = runner.invoke(app, ["notice", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def words(page: str) -> str:
    """The page's visible text, tags removed and white space collapsed."""
    body = page.split("<body>", 1)[1]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_notice_names_the_site_controller_and_contact_and_says_what_is_never_stored() -> None:
    page = notice(
        "--site",
        "Riverside Mall",
        "--contact",
        "dpo@riverside.example",
        "--operator",
        "Riverside Retail Ltd",
        "--object-url",
        "https://riverside.example/object",
        "--info-url",
        "https://riverside.example/privacy",
        "--legal-basis",
        "Legitimate interest (GDPR Art. 6(1)(f))",
        "--k",
        "7",
    )
    assert page.startswith("<!DOCTYPE html>")
    text = words(page)
    assert "Riverside Mall" in text
    assert "Controller: Riverside Retail Ltd" in text
    assert '<a href="mailto:dpo@riverside.example">dpo@riverside.example</a>' in page
    assert '<a href="https://riverside.example/object">' in page
    assert '<a href="https://riverside.example/privacy">' in page
    assert "Legal basis: Legitimate interest (GDPR Art. 6(1)(f))" in text
    assert "fewer than 7 people are never shown" in text
    # What is measured, how, what is never stored, and how to object.
    assert "How many people pass through each area, per hour." in text
    assert "estimate of gender from the appearance of each face" in text
    assert "forgets the picture at once" in text
    for never in ("No images and no video", "No face data", "No identities", "Nothing that could recognise you"):
        assert never in text, never
    assert "right to object" in text
    assert "Art. 50(3)" in text


def test_notice_is_self_contained_printable_and_has_no_script_or_external_resource() -> None:
    page = notice("--site", "Riverside Mall", "--contact", "dpo@riverside.example")
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered and "onload" not in lowered
    assert "@page" in page and "A4" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # the only links are the operator's
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    # Nothing of the template is left unfilled.
    assert "$" not in page


def test_every_operator_input_is_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    page = notice(
        "--site",
        f"Mall {hostile} & Co",
        "--contact",
        f'dpo@example.com" onmouseover="x{hostile}',
        "--operator",
        f"Ops {hostile}",
        "--object-url",
        'https://example.com/"><script>x</script>',
        "--legal-basis",
        hostile,
    )
    assert "<script" not in page.lower()
    assert "Mall &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert 'onmouseover="' not in page
    assert "dpo@example.com&quot; onmouseover=&quot;x&lt;script&gt;" in page


def test_an_unfilled_legal_basis_is_a_highlighted_blank_and_the_operator_is_told() -> None:
    result = runner.invoke(app, ["notice", "--site", "Riverside Mall", "--contact", "dpo@riverside.example"])
    assert result.exit_code == 0, result.output
    assert '<span class="fill">[to be filled in by the operator' in result.stdout
    assert "--legal-basis" in result.stderr
    # Without --operator the site is named as the controller, and the operator is told.
    assert "Controller: Riverside Mall" in words(result.stdout)
    assert "--operator" in result.stderr


def test_counts_only_leaves_every_gender_word_out() -> None:
    page = notice("--site", "Riverside Mall", "--contact", "dpo@riverside.example", "--demographics", "counts-only")
    text = words(page).lower()
    for word in ("gender", "female", "male", "biometric categorisation", "art. 50(3)"):
        assert word not in text, word
    assert "how many people pass through each area, per hour." in text
    assert "no images and no video" in text
    full = words(notice("--site", "Riverside Mall", "--contact", "dpo@riverside.example")).lower()
    assert "gender" in full and "female" in full and "age group" in full and "under 18" in full
    for word in ("age group", "gender and age"):
        assert word not in text, word


def test_gender_only_names_gender_and_no_age() -> None:
    page = notice("--site", "Riverside Mall", "--contact", "dpo@riverside.example", "--demographics", "gender-only")
    text = words(page).lower()
    assert "female or male" in text and "estimates gender (a biometric categorisation)" in text
    assert "age group" not in text


def test_notice_writes_a_file_with_out(tmp_path: Path) -> None:
    out = tmp_path / "notice.html"
    result = runner.invoke(app, ["notice", "--site", "Riverside Mall", "--contact", "dpo@x.example", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Riverside Mall" in out.read_text(encoding="utf-8")
    assert "<html" not in result.stdout


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--demographics", "age"], "--demographics"),
        (["--k", "1"], "--k"),
        (["--site", " "], "--site"),
        (["--out", "{tmp}"], "--out"),  # a folder: was an IsADirectoryError traceback
        (["--out", "{tmp}/notice.html/x.html"], "--out"),  # under a file
    ],
)
def test_bad_options_are_usage_errors(args: list[str], hint: str, tmp_path: Path) -> None:
    (tmp_path / "notice.html").write_text("an existing file")
    args = [a.format(tmp=tmp_path) for a in args]
    result = runner.invoke(app, ["notice", "--site", "Riverside Mall", "--contact", "dpo@x.example", *args])
    assert result.exit_code == 2
    assert hint in result.output and "Traceback" not in result.output


def test_render_notice_checks_its_facts() -> None:
    with pytest.raises(ValueError, match="demographics"):
        render_notice(NoticeFacts("Mall", "dpo@x.example", demographics="age"))
    with pytest.raises(ValueError, match="k"):
        render_notice(NoticeFacts("Mall", "dpo@x.example", k=1))


def test_notice_help_teaches_with_an_example() -> None:
    result = runner.invoke(app, ["notice", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert 'Example: footfall notice --site "Riverside Mall"' in text
    assert "does not certify compliance" in text


def test_the_compliance_kit_exists_and_the_readme_links_it() -> None:
    for name in ("README.md", "dpia-template.md", "model-limitations.md", "not-done.md"):
        assert (KIT / name).is_file(), name
    index = (KIT / "README.md").read_text(encoding="utf-8")
    for name in ("dpia-template.md", "model-limitations.md", "not-done.md", "footfall notice"):
        assert name in index, name
    assert "controller" in index and "does not certify compliance" in index
    assert "](docs/compliance/" in (REPO / "README.md").read_text(encoding="utf-8")
    dpia = (KIT / "dpia-template.md").read_text(encoding="utf-8")
    for fact in ("[OPERATOR", "FOOTFALL_K_ANON", "FOOTFALL_RETENTION_DAYS", "35 days", "API keys", "TLS"):
        assert fact in dpia, fact
    not_done = " ".join((KIT / "not-done.md").read_text(encoding="utf-8").split())
    for never in ("No identification", "No re-identification across cameras", "No emotion", "No ethnicity"):
        assert never in not_done, never
    limits = (KIT / "model-limitations.md").read_text(encoding="utf-8")
    for point in ("unknown", "Children", "Women are read as men more often", "MODEL_CARD.md"):
        assert point in limits, point


def test_the_template_ships_as_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"footfall.templates" = ["*.html"]' in pyproject
    assert (REPO / "footfall" / "templates" / "notice.html").is_file()


def test_the_dpia_template_and_not_done_cover_what_the_shipped_model_estimates() -> None:
    """The DPIA template is "pre-filled with what footfall, as shipped, does": where the notice names a
    category (gender, age group in the default 'full' mode), the DPIA must describe it too, with every mode a
    site can be put in; not-done.md must not say footfall estimates one attribute only."""
    from footfall.core.ages import AGE_BANDS, MINOR_BANDS

    dpia = " ".join((KIT / "dpia-template.md").read_text(encoding="utf-8").split())
    full = words(notice("--site", "S", "--contact", "c@example.org"))
    assert "age group" in full  # the notice of a 'full' site names age, so the DPIA must describe it
    for mode in ("full", "gender-only", "counts-only"):
        assert f"`{mode}`" in dpia, f"the DPIA template does not describe the '{mode}' mode"
    assert "age band" in dpia and f"{AGE_BANDS[0]} … {AGE_BANDS[-1]}" in dpia
    assert all(band in dpia for band in MINOR_BANDS) and "under 18" in dpia
    not_done = " ".join((KIT / "not-done.md").read_text(encoding="utf-8").split())
    assert "one attribute" not in not_done
    readme = " ".join((KIT / "README.md").read_text(encoding="utf-8").split())
    assert "--demographics gender-only" in readme


def test_model_limitations_quote_the_model_cards_age_errors() -> None:
    """model-limitations.md says its figures come from models/MODEL_CARD.md: the age errors it quotes are the
    card's (shipped INT8 graphs, UTKFace and wiki test), rounded to a tenth of a year."""
    card = (REPO / "models" / "MODEL_CARD.md").read_text(encoding="utf-8")
    lines = card.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| MAE (years) |"))
    row = lines[at]
    header = next(line for line in reversed(lines[:at]) if line.startswith("| measure |"))  # the row's table
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    values = dict(zip(columns, (cell.strip() for cell in row.strip("|").split("|")), strict=True))
    limits = " ".join((KIT / "model-limitations.md").read_text(encoding="utf-8").split())
    utk = re.search(r"on UTKFace its estimate is off by ([\d.]+) years", limits)
    wiki = re.search(r"On the Wikipedia portraits it is off by ([\d.]+) years", limits)
    assert utk and wiki, "model-limitations.md no longer states the age errors where this test reads them"
    assert float(utk[1]) == round(float(values["utkface test int8"]), 1)
    assert float(wiki[1]) == round(float(values["wiki test int8"]), 1)
