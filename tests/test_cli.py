"""The command line's help: flags show no type, options a metavar, and the texts say what the code does."""

from __future__ import annotations

import itertools
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
    # A bounded option shows its range after the metavar: ``<seconds> [0.0<=x<=3600.0]``.
    metavar = re.match(r"<[^>]+>(?=\s|$)", first)
    return metavar.group(0) if metavar else ""


@pytest.mark.parametrize(
    ("command", "flags", "options"),
    [
        ((), ("--version", "--log-json", "--help"), {"--log-level": "<level>"}),
        (("agent",), ("--check-config", "--help"), {"--config": "<path>", "--drain-seconds": "<seconds>"}),
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


def prose(*command: str, columns: int) -> list[str]:
    """The lines of a command's help above its boxes, at ``columns`` wide, stripped of the margin."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    lines = result.output.split("╭")[0].splitlines()
    return [line.strip() for line in lines]


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("command", [("process",), ("agent",), ("doctor",), ("demo",), ("keys", "create")])
def test_help_paragraphs_fill_the_terminal_and_examples_keep_their_own_lines(
    command: tuple[str, ...], columns: int
) -> None:
    """Typer keeps a docstring's source line breaks after its first paragraph, so at 80 columns `footfall process
    --help` broke every source line in two: a full line, then a few words ('split, frames, fps,'). A paragraph
    fills the width; each example stays on its own line."""
    lines = prose(*command, columns=columns)
    for above, below in itertools.pairwise(lines):
        if above and below and not below.startswith("Example:"):
            room = columns - 3 - len(above)  # a margin of 1 column each side, and a space before the word
            assert len(below.split()[0]) > room, f"{' '.join(command)}: a line ends early:\n{above}\n{below}"
    examples = [line for line in lines if line.startswith("Example:")]
    assert examples and all(line.startswith("Example: footfall") for line in examples), examples


def test_two_examples_of_one_command_stay_on_two_lines() -> None:
    examples = [line for line in prose("keys", "create", columns=200) if "Example:" in line]
    assert len(examples) == 2 and all(line.startswith("Example: footfall keys create") for line in examples)


@pytest.mark.parametrize("columns", [80, 200])
def test_an_example_command_ends_where_its_source_line_does(columns: int) -> None:
    """'footfall server --help' joined the line after its example onto the command ('... --port 8000 then open
    http://...'): a command to copy that runs into prose. Prose after an example keeps its own line; an example
    continued on the next source line (an option, '--images ...') or begun after a bare 'Example:' still joins."""
    lines = prose("server", columns=columns)
    example = next(line for line in lines if line.startswith("Example:"))
    assert example.endswith("--port 8000"), lines
    assert lines[lines.index(example) + 1].startswith("then open"), lines
    joined = " ".join(" ".join(prose(*command, columns=200)) for command in (("evaluate",), ("export",)))
    assert "--csv ../shared/data/wiki-144.csv --images" in joined and "Example: footfall export models/" in joined
