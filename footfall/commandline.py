"""The ``footfall`` Typer app: its root options, ``schema``, and each part's commands.

Each part contributes its commands through a light ``commands`` module that imports only typer and the
standard library at import time; the part itself is imported when a command runs. So ``footfall agent
--help`` works on a camera box that installed only ``footfall[edge]``, and a missing extra is reported
as one clear line instead of an ImportError traceback. The entry point that runs it is :func:`footfall.cli.main`.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from footfall import __version__

PART_COMMANDS = (
    "footfall.edge.commands",
    "footfall.server.commands",
    "footfall.models.commands",
    "footfall.exporter.commands",
    "footfall.demo",
    "footfall.notice",
)


def _flags_show_no_type() -> None:
    """Typer's Rich help (0.2x with its own click) gives every option a type column, flags included
    (``--version <bool>``, ``--help <bool>``). A flag takes no value, so it shows none, as in click's plain
    help; an option keeps its metavar or type (``<path>``, ``<int>``)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - a typer without its own option class renders flags bare already
        return
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "footfall_flags_bare", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        value: str | None = shown(self, ctx)
        return value

    display_type_rich.footfall_flags_bare = True  # type: ignore[attr-defined]  # a marker on the function
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]  # the patch itself


def _help_paragraphs_wrap() -> None:
    """Typer's Rich help (0.2x) keeps the source line breaks of a command's docstring after its first paragraph,
    so at 80 columns each source line broke in two: a full line, then a few words. A paragraph's lines are
    joined so that it fills the terminal; a line starting with 'Example:' keeps its own line (a command to
    copy, one per line), and so does the prose after it (see :func:`_joined`)."""
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - typer without Rich help wraps paragraphs itself
        return
    kept = getattr(rich_utils, "_fix_linebreaks", None)
    if kept is None or getattr(kept, "footfall_wraps", False):
        return

    def fix_linebreaks(paragraphs: list[str], markup_mode: Any) -> str:
        joined = [p if p.startswith("\b") else _joined(p) for p in paragraphs]
        value: str = kept(joined, markup_mode)
        return value

    fix_linebreaks.footfall_wraps = True  # type: ignore[attr-defined]  # a marker on the function
    rich_utils._fix_linebreaks = fix_linebreaks  # the patch itself


def _joined(paragraph: str) -> str:
    """A help paragraph with its source line breaks joined, so that it fills the terminal. An 'Example:' line starts
    its own line, and its command goes on over the next source line only where that line continues it (an option,
    '-...', or the command itself after a bare 'Example:'); prose after it ('then open ...') starts its own line."""
    lines = paragraph.split("\n")
    text, in_example = lines[0], lines[0].startswith("Example:")
    for line in lines[1:]:
        if line.startswith("Example:"):
            text, in_example = f"{text}\n{line}", True
        elif in_example and not (line.startswith("-") or text.endswith("Example:")):
            text, in_example = f"{text}\n{line}", False
        else:
            text = f"{text} {line}"
    return text


_flags_show_no_type()
_help_paragraphs_wrap()

app = typer.Typer(
    name="footfall",
    help=(
        "Privacy-first audience analytics: people and gender split per zone and hour, from camera boxes.\n\n"
        "Quick start: `footfall demo` runs broker, server and an agent on a sample clip, then open the "
        "dashboard URL it prints."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"footfall {__version__}")
        raise typer.Exit()


LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.lower()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    log_level: str = typer.Option(
        "info",
        "--log-level",
        envvar="FOOTFALL_LOG_LEVEL",
        metavar="<level>",
        callback=_log_level,
        help=", ".join(LOG_LEVELS) + ".",
    ),
    log_json: bool = typer.Option(False, "--log-json", envvar="FOOTFALL_LOG_JSON", help="Logs as JSON lines."),
) -> None:
    from footfall.core.logs import configure_logging

    configure_logging(log_level, as_json=log_json)


@app.command("schema")
def schema(
    kind: str = typer.Argument("wire", help="'wire' (edge → server messages) or 'bundle' (model manifest)."),
) -> None:
    """Print a JSON Schema of the shared contracts.

    Example: footfall schema wire > docs/wire-schema.json   (and 'bundle' > docs/bundle-manifest-schema.json)
    """
    if kind == "wire":
        from footfall.core.wire import json_schema_text

        typer.echo(json_schema_text(), nl=False)
    elif kind == "bundle":
        from footfall.core.manifest import manifest_schema_text

        typer.echo(manifest_schema_text(), nl=False)
    else:
        raise typer.BadParameter("choose 'wire' or 'bundle'", param_hint="KIND")


for _module in PART_COMMANDS:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _exc:
        # Only a missing part module is tolerated here; anything else is a bug that must surface.
        if _exc.name != _module:
            raise
