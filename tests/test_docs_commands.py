"""Every `footfall …` command the operator documentation shows names a subcommand and options that exist:
the README, deploy/ and docs/ (code blocks and inline code), the systemd unit's ExecStart lines and the
compose services' commands are checked against the CLI itself (its click command tree, what `--help` prints).
A renamed or removed option fails here instead of on an operator's box."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from footfall.cli import app

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted(
    {
        REPO / "README.md",
        REPO / "deploy" / "README.md",
        REPO / "deploy" / "monitoring" / "README.md",
        *(REPO / "docs").rglob("*.md"),
    }
)
SYSTEMD_UNIT = REPO / "edge" / "footfall-agent.service"
COMPOSE_FILE = REPO / "docker-compose.yml"
# Where a shell command line ends: what follows is another command, a redirection or a comment.
ENDS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&", "#"}
FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
SHELL = {"bash", "sh", "shell", "console"}  # fences without a language hold diagrams and sample output
INLINE = re.compile(r"`([^`\n]+)`")


# Typer's command objects (its own copy of click): a group has ``commands``, every command ``params``.
HELP = ("--help", "-h")


def root() -> Any:
    command = typer.main.get_command(app)
    assert hasattr(command, "commands")
    return command


def snippets(text: str) -> Iterator[str]:
    """The shell lines of a markdown text: each line of its fenced blocks (continuations joined), and each
    inline code span."""
    for language, block in FENCE.findall(text):
        if language in SHELL:
            yield from block.replace("\\\n", " ").splitlines()
    yield from INLINE.findall(FENCE.sub("", text))


def invocations(line: str) -> Iterator[list[str]]:
    """The arguments of each command of one shell line that runs footfall: `footfall ARGS`, after variable
    assignments, `sudo` or `docker compose exec|run SERVICE`."""
    try:
        words = shlex.split(line.replace("…", "X"), comments=True)
    except ValueError:  # prose in backticks with an apostrophe: no command
        return
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ENDS:
            commands.append([])
        else:
            commands[-1].append(word)
    for command in commands:
        while command and (re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", command[0]) or command[0] == "sudo"):
            command = command[1:]
        if command[:3] in (["docker", "compose", "exec"], ["docker", "compose", "run"]):
            command = command[3:]
            while command and command[0].startswith("-"):  # compose's own flags, then the service
                command = command[1:]
            command = command[1:]
        if command and (command[0] == "footfall" or command[0].endswith("/bin/footfall")):
            yield command[1:]


def problems(args: list[str]) -> list[str]:
    """What in ``footfall ARGS`` the CLI does not have: an unknown subcommand or option."""
    command = root()
    path = ["footfall"]
    found: list[str] = []
    words = iter(args)
    for word in words:
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            option = next((p for p in command.params if name in (*p.opts, *p.secondary_opts)), None)
            if option is None and name not in HELP:
                found.append(f"{' '.join(path)} has no option {name}")
            elif option is not None and not getattr(option, "is_flag", False) and "=" not in word:
                next(words, None)  # the option's value
        elif hasattr(command, "commands"):
            sub = command.commands.get(word)
            if sub is None:
                found.append(f"{' '.join(path)} has no subcommand {word!r}")
                break
            command = sub
            path.append(word)
    return found


def documented() -> Iterator[tuple[str, list[str]]]:
    for doc in DOCS:
        for line in snippets(doc.read_text(encoding="utf-8")):
            for args in invocations(line):
                yield f"{doc.relative_to(REPO)}: {line.strip()}", args
    for line in SYSTEMD_UNIT.read_text(encoding="utf-8").splitlines():
        if re.match(r"ExecStart(Pre|Post)?=", line):
            for args in invocations(line.split("=", 1)[1]):
                yield f"{SYSTEMD_UNIT.relative_to(REPO)}: {line}", args
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "footfall":
            yield f"docker-compose.yml: {name}: {command}", command[1:]
        elif isinstance(command, list) and name == "agent":  # arguments to the image's ENTRYPOINT
            dockerfile = (REPO / service["build"]["dockerfile"]).read_text(encoding="utf-8")
            entrypoint = yaml.safe_load(re.search(r"^ENTRYPOINT (.*)$", dockerfile, re.MULTILINE)[1])
            yield f"docker-compose.yml: {name}: {entrypoint + command}", [*entrypoint[1:], *command]


def test_the_checker_finds_what_it_should() -> None:
    assert problems(["agent", "--config", "a.yaml", "--check-config"]) == []
    assert problems(["--log-json", "agent", "-c", "a.yaml"]) == []
    assert problems(["keys", "create", "--role", "viewer", "--name", "ad team"]) == []
    assert problems(["agent", "--conf", "a.yaml"]) == ["footfall agent has no option --conf"]
    assert problems(["keys", "make"]) == ["footfall keys has no subcommand 'make'"]
    assert list(invocations("DATABASE_URL=x footfall server --mqtt y  # note")) == [["server", "--mqtt", "y"]]
    assert list(invocations("docker compose exec -T server footfall keys list | wc")) == [["keys", "list"]]
    assert list(invocations("psql -U footfall -c x; echo footfall")) == []


def test_every_documented_footfall_command_exists() -> None:
    seen = list(documented())
    assert len(seen) >= 20, f"the docs name only {len(seen)} footfall commands: is the extraction broken?"
    assert any(where.startswith("edge/footfall-agent.service") for where, _ in seen)
    assert any(where.startswith("docker-compose.yml: agent") for where, _ in seen)
    wrong = [f"{where}\n    {problem}" for where, args in seen for problem in problems(args)]
    assert not wrong, "documented commands the CLI does not have:\n" + "\n".join(wrong)


@pytest.mark.parametrize("doc", ["README.md", "deploy/README.md"])
def test_a_dashboard_url_comes_with_how_to_get_its_viewer_key(doc: str) -> None:
    """The dashboard asks for a viewer key and shows nothing without one: a doc that sends the operator to
    /dashboard/ says how to create that key."""
    text = " ".join((REPO / doc).read_text(encoding="utf-8").split())
    first_url = text.index("/dashboard/")
    # Either the URL carries the key (the demo prints it so), or the doc said how to create one before.
    assert text.startswith("/dashboard/?key=", first_url) or "keys create --role viewer" in text[:first_url], (
        f"{doc} sends the operator to the dashboard without saying how to get a viewer key"
    )
