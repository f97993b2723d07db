"""The command line's help: flags show no type, options a metavar, and the texts say what the code does."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from footfall.cli import app

runner = CliRunner()


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return result.output


def type_column(text: str, option: str) -> str:
    """What the help row of ``option`` shows between its names (``--x``, ``-x``, ``--no-x``) and its help."""
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("│") and re.search(rf"(^|\s){re.escape(option)}(\s|$)", line)
    ]
    assert rows, f"{option} is not in:\n{text}"
    cells = [cell for cell in re.split(r"\s{2,}", rows[0].strip("│ *")) if cell]
    after_names = [cell for cell in cells if not cell.startswith("-")]
    first = after_names[0] if after_names else ""
    return first if re.fullmatch(r"<[^>]+>", first) else ""


@pytest.mark.parametrize(
    ("command", "flags", "options"),
    [
        ((), ("--version", "--log-json", "--help"), {"--log-level": "<level>"}),
        (("agent",), ("--check-config", "--help"), {"--config": "<path>", "--drain-seconds": "<float>"}),
        (("train",), ("--resume", "--progress", "--help"), {"--config": "<path>", "--out": "<path>"}),
    ],
)
def test_flags_show_no_type_and_options_a_metavar(
    command: tuple[str, ...], flags: tuple[str, ...], options: dict[str, str]
) -> None:
    text = help_text(*command)
    assert "<bool>" not in text
    for flag in flags:
        assert type_column(text, flag) == "", flag
    for option, metavar in options.items():
        assert type_column(text, option) == metavar, option


def test_an_unknown_log_level_is_a_usage_error_not_a_traceback() -> None:
    result = runner.invoke(app, ["--log-level", "loud", "schema"])
    assert result.exit_code == 2
    assert "debug, info, warning, error" in result.output
    assert not isinstance(result.exception, ValueError)


def test_agent_help_says_aggregates_wait_for_the_servers_receipt() -> None:
    text = " ".join(help_text("agent").split())
    assert "until the server's receipt" in text
    assert "broker acknowledges" not in text
