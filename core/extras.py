"""Optional extras (``footfall[edge]``, ``[server]``, ...): a command checks that the one it needs is installed
before it imports it, and otherwise stops with a one-line install hint instead of a traceback."""

from __future__ import annotations

import importlib.util

import typer


def require(extra: str, *modules: str) -> None:
    """Stops with exit code 2 and an install hint unless every module in ``modules`` can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        typer.secho(
            f"error: this command needs footfall[{extra}] (missing: {', '.join(missing)}). "
            f'Install it with: pip install "footfall[{extra}]"',
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
