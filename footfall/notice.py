"""``footfall notice``: the first-layer notice for a site's entrance, as one printable page of HTML.

The page says in plain words what footfall measures, what it never stores or sends, who the controller is and
how to object, and where the full (second-layer) information lives; the layered approach of the EDPB's
Guidelines 3/2019 on video devices, and the information a deployer of a biometric categorisation system owes
the people exposed to it (EU AI Act, Art. 50(3)). It helps an operator meet those duties; it does not make a
deployment compliant. The operator is the controller and fills in what only it can know (the legal basis).

The template ships as package data (``footfall/templates/notice.html``); every value the operator gives is
HTML-escaped before it is placed in the page, which has inline CSS only: no script, no external resource.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import typer

from footfall import __version__

DEMOGRAPHICS = ("full", "gender-only", "counts-only")
DEFAULT_K = 5
LEGAL_BASIS_BLANK = "[to be filled in by the operator, e.g. legitimate interest, GDPR Art. 6(1)(f)]"


@dataclass(frozen=True)
class NoticeFacts:
    """What the notice states; every text field is operator input and is escaped when rendered."""

    site: str
    contact: str
    operator: str | None = None
    object_url: str | None = None
    info_url: str | None = None
    legal_basis: str | None = None
    k: int = DEFAULT_K
    demographics: str = "full"


def _template() -> Template:
    text = resources.files("footfall").joinpath("templates", "notice.html").read_text(encoding="utf-8")
    return Template(text)


def _esc(value: str) -> str:
    return html.escape(value.strip(), quote=True)


def _link(value: str) -> str:
    """An http(s) address as a link, an e-mail address as a mailto link, anything else as text; all escaped."""
    text = _esc(value)
    stripped = value.strip()
    if stripped.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in stripped):
        return f'<a href="{text}">{text}</a>'
    if "@" in stripped and not any(c.isspace() for c in stripped) and ":" not in stripped:
        return f'<a href="mailto:{text}">{text}</a>'
    return text


def render_notice(facts: NoticeFacts) -> str:
    """The notice as a self-contained HTML page."""
    if facts.demographics not in DEMOGRAPHICS:
        raise ValueError(f"demographics must be one of {', '.join(DEMOGRAPHICS)}, not {facts.demographics!r}")
    if facts.k < 2:
        raise ValueError("k must be at least 2")
    gender = facts.demographics in ("full", "gender-only")
    age = facts.demographics == "full"
    site = _esc(facts.site)
    operator = _esc(facts.operator) if facts.operator and facts.operator.strip() else site
    contact = _link(facts.contact)
    if gender:
        what = "gender and age group" if age else "gender"
        looks = "whether the person looks female or male" + (", and their age group" if age else "")
        lead = (
            f"Cameras in this centre count how many people pass through each area, and estimate from each face "
            f"{looks}. Only numbers are kept: no image, no identity."
        )
        measured = [
            "How many people pass through each area, per hour.",
            "An estimate of gender from the appearance of each face (female, male or unknown), counted once "
            "per person and kept only as totals. It is a guess from appearance, not your identity.",
            *(
                [
                    "An estimate of age group (such as 25-34) from the appearance of each face, counted once per "
                    "person and kept only as totals. Advertising is never aimed at people under 18."
                ]
                if age
                else []
            ),
            "How long people stay in an area, on average.",
        ]
        how = (
            "A camera box finds faces in the live picture and follows each one for a few seconds, so that a "
            f"person is counted once. It estimates {what} on the box itself, adds one to a count, and forgets "
            "the picture at once: frames exist only in the box's memory, for a fraction of a second."
        )
        legal_note = (
            f"This notice informs you that a system which estimates {what} (a biometric categorisation) from "
            "faces is in operation (EU AI Act, Art. 50(3); GDPR, Art. 13)."
        )
    else:
        lead = (
            "Cameras in this centre count how many people pass through each area. Only numbers are kept: "
            "no image, no identity."
        )
        measured = [
            "How many people pass through each area, per hour.",
            "How long people stay in an area, on average.",
        ]
        how = (
            "A camera box finds faces in the live picture and follows each one for a few seconds, so that a "
            "person is counted once. It adds one to a count and forgets the picture at once: frames exist only "
            "in the box's memory, for a fraction of a second."
        )
        legal_note = "This notice informs you that camera-based people counting is in operation (GDPR, Art. 13)."
    if facts.legal_basis and facts.legal_basis.strip():
        legal_basis = _esc(facts.legal_basis)
    else:
        legal_basis = f'<span class="fill">{html.escape(LEGAL_BASIS_BLANK)}</span>'
    if facts.object_url and facts.object_url.strip():
        objection = f"To object or ask: {_link(facts.object_url)} or write to {contact}."
    else:
        objection = f"To object or ask, write to {contact}."
    if facts.info_url and facts.info_url.strip():
        info = _link(facts.info_url)
    else:
        info = f"at the information desk of {site}, or on request from {contact}."
    return _template().substitute(
        site=site,
        operator=operator,
        contact=contact,
        lead=lead,
        measured="\n".join(f"      <li>{item}</li>" for item in measured),
        how=how,
        k=str(int(facts.k)),
        legal_basis=legal_basis,
        object=objection,
        info=info,
        legal_note=legal_note,
        version=html.escape(__version__),
    )


def register(app: typer.Typer) -> None:
    @app.command("notice")
    def notice(
        site: str = typer.Option(..., "--site", metavar="<name>", help="The site's name, as visitors know it."),
        contact: str = typer.Option(
            ..., "--contact", metavar="<contact>", help="Where to ask or object: an e-mail, phone or address."
        ),
        operator: str | None = typer.Option(
            None, "--operator", metavar="<name>", help="The controller's name (default: the site's name)."
        ),
        object_url: str | None = typer.Option(
            None, "--object-url", metavar="<url>", help="A page or form where a visitor can object."
        ),
        info_url: str | None = typer.Option(
            None, "--info-url", metavar="<url>", help="Where the full (second-layer) information is published."
        ),
        legal_basis: str | None = typer.Option(
            None,
            "--legal-basis",
            metavar="<text>",
            help="The legal basis you rely on; left as a highlighted blank to fill in when not given.",
        ),
        out: Path | None = typer.Option(None, "--out", metavar="<path>", help="Write to this file (default: stdout)."),
        k: int = typer.Option(DEFAULT_K, "--k", metavar="<int>", min=2, help="The server's k (FOOTFALL_K_ANON)."),
        demographics: str = typer.Option(
            "full",
            "--demographics",
            metavar="<mode>",
            help="full (people, estimated gender and age group), gender-only (people and estimated gender) or "
            "counts-only (people only, no gender or age wording): the site's demographics mode.",
        ),
    ) -> None:
        """Render the entrance notice: one printable A4 page of HTML for the site's entrances.

        It says in plain words what is measured, what is never stored or sent, who the controller is and how
        to object, and where the full information lives (the first layer of the EDPB's layered approach;
        EU AI Act Art. 50(3) for gender estimation). Print it from a browser. It helps you inform visitors;
        it does not certify compliance: you are the controller. See docs/compliance/.

        Example: footfall notice --site "Riverside Mall" --contact dpo@riverside.example --out notice.html

        Example: footfall notice --site "Riverside Mall" --contact dpo@riverside.example --operator "Riverside Ltd"
        --legal-basis "Legitimate interest (GDPR Art. 6(1)(f))" --object-url https://riverside.example/object
        """
        if demographics not in DEMOGRAPHICS:
            raise typer.BadParameter(f"choose {' or '.join(DEMOGRAPHICS)}", param_hint="--demographics")
        if not site.strip():
            raise typer.BadParameter("must not be empty", param_hint="--site")
        if not contact.strip():
            raise typer.BadParameter("must not be empty", param_hint="--contact")
        if out is not None:
            from footfall.core.outpaths import OutputPathError, writable_file

            try:
                writable_file(out)
            except OutputPathError as exc:
                raise typer.BadParameter(str(exc), param_hint="--out") from None
        facts = NoticeFacts(site, contact, operator, object_url, info_url, legal_basis, k, demographics)
        page = render_notice(facts)
        if not (legal_basis and legal_basis.strip()):
            typer.echo("note: the legal basis is a highlighted blank; fill it in or pass --legal-basis", err=True)
        if not (operator and operator.strip()):
            typer.echo("note: no --operator; the notice names the site as the controller", err=True)
        if out is None:
            typer.echo(page, nl=False)
        else:
            out.write_text(page, encoding="utf-8")
            typer.echo(f"wrote {out}", err=True)
