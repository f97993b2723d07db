"""The ``footfall`` command line.

Each part contributes its commands through a light ``commands`` module that imports only typer and the
standard library at import time; the part itself is imported when a command runs. So ``footfall agent
--help`` works on a camera box that installed only ``footfall[edge]``, and a missing extra is reported
as one clear line instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import typer

from footfall import __version__

PART_COMMANDS = (
    "footfall.edge.commands",
    "footfall.server.commands",
    "footfall.models.commands",
    "footfall.exporter.commands",
    "footfall.demo",
)

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


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    log_level: str = typer.Option("info", "--log-level", envvar="FOOTFALL_LOG_LEVEL", help="debug, info, warning."),
    log_json: bool = typer.Option(False, "--log-json", envvar="FOOTFALL_LOG_JSON", help="Logs as JSON lines."),
) -> None:
    from footfall.core.logs import configure_logging

    configure_logging(log_level, as_json=log_json)


@app.command("schema")
def schema(
    kind: str = typer.Argument("wire", help="'wire' (edge → server messages) or 'bundle' (model manifest)."),
) -> None:
    """Print a JSON Schema of the shared contracts.

    Example: footfall schema wire > docs/wire-schema.json
    """
    if kind == "wire":
        from footfall.core.wire import json_schema_text

        typer.echo(json_schema_text(), nl=False)
    elif kind == "bundle":
        import json

        from footfall.core.manifest import BundleManifest

        typer.echo(json.dumps(BundleManifest.model_json_schema(by_alias=True), indent=2, sort_keys=True))
    else:
        raise typer.BadParameter("choose 'wire' or 'bundle'", param_hint="KIND")


for _module in PART_COMMANDS:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _exc:
        # Only a missing part module is tolerated here; anything else is a bug that must surface.
        if _exc.name != _module:
            raise


def require(extra: str, *modules: str) -> None:
    """Checks that an extra's modules import; otherwise stops with a one-line install hint."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        typer.secho(
            f"error: this command needs footfall[{extra}] (missing: {', '.join(missing)}). "
            f'Install it with: pip install "footfall[{extra}]"',
            fg="red",
            err=True,
        )
        raise typer.Exit(2)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        logging.getLogger("footfall").info("interrupted")
        sys.exit(130)
