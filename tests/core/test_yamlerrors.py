"""YAML syntax errors name the line where the problem starts, for agent configs and training recipes alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from footfall.core.yamlerrors import describe_yaml_error, yaml_error_line

REPO = Path(__file__).resolve().parents[2]


def error_of(text: str) -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load(text)
    return caught.value


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\n" * 10 + "k: [1, 2\nl: 3\nm: 4\n", 11),  # '[' left open: where it opens, not at 'l:'
        ("a: 1\n" * 10 + "k: {x: 1\nl: 3\n", 11),
        ("a: 1\n" * 10 + 'k: "abc\nl: 3\nm: 4\n', 11),  # PyYAML gives up at the end of the file
        ("a: 1\n" * 10 + "k: [1, 2\n", 11),
        ("cameras:\n  - id: c\n   source: 0\n", 3),  # no opening mark: where the parser stopped
        ("a: b: c\n", 1),
    ],
)
def test_the_line_where_the_problem_starts(text: str, line: int) -> None:
    assert yaml_error_line(error_of(text)) == line


def test_the_message_is_one_line_and_names_both_lines() -> None:
    message = describe_yaml_error(error_of("a: 1\n" * 10 + "k: [1, 2\nl: 3\n"), "agent.yaml")
    assert message == (
        "agent.yaml:11: not valid YAML (in the '[' that opens here: expected ',' or ']', but got ':' on line 12)"
    )
    assert describe_yaml_error(error_of("a: b: c\n"), "x.yaml") == (
        "x.yaml:1: not valid YAML (mapping values are not allowed here)"
    )


def test_a_recipe_reports_an_unclosed_bracket_where_it_opens(tmp_path: Path) -> None:
    from footfall.models.recipe import RecipeError, load_recipe

    lines = (REPO / "models" / "configs" / "audience-v7.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.rstrip().endswith("]") and ": [" in line)
    lines[number] = lines[number].rstrip()[:-1]  # drop the closing ']'
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecipeError, match=rf"^{recipe}:{number + 1}: not valid YAML \(in the '\[' that opens here"):
        load_recipe(recipe)


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a config with two ``cameras:`` ran one camera and said nothing of the
    other, a second ``mqtt:`` dropped the first one's host. Agent configs and recipes refuse them, naming both lines."""
    from footfall.edge.config import ConfigError, parse_config
    from footfall.models.recipe import RecipeError, load_recipe

    config = (REPO / "edge" / "config.example.yaml").read_text()
    first = next(i for i, line in enumerate(config.splitlines()) if line.startswith("cameras:")) + 1
    twice = config + "\ncameras:\n  - id: atrium\n    source: 0\n"
    last = len(twice.splitlines()) - 2
    with pytest.raises(ConfigError) as caught:
        parse_config(twice, "agent.yaml")
    assert str(caught.value) == f"agent.yaml:{last}: key 'cameras' given twice (first on line {first})"
    nested = "agent_id: a\nsite_id: b\ncameras:\n  - id: c\n    source: 0\n    fps: 5\n    fps: 10\n"
    with pytest.raises(ConfigError, match=r"^agent.yaml:7: key 'fps' given twice \(first on line 6\)$"):
        parse_config(nested, "agent.yaml")
    merged = "base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\n"  # a merge key overridden: legal YAML, not a repeat
    assert yaml.safe_load(merged)["other"] == {"x": 2}
    from footfall.core.yamlerrors import repeated_key

    assert repeated_key(yaml.compose(merged, Loader=yaml.SafeLoader), "m.yaml") is None

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text((REPO / "models" / "configs" / "audience-v7.yaml").read_text() + "\nseed: 7\n")
    with pytest.raises(RecipeError, match=r"key 'seed' given twice"):
        load_recipe(recipe)


def test_an_alias_that_holds_itself_or_a_billion_laughs_is_one_line_not_a_hang(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by an adversarial review: ``a: &a [*a]`` kept --check-config, process and doctor running until killed,
    printing nothing, and seven levels of ten aliases took 13 s (ten times more per level): the check for repeated
    keys walked every alias's value again."""
    from footfall.edge.config import ConfigError, parse_config
    from footfall.models.recipe import RecipeError, load_recipe

    itself = "agent_id: a\nsite_id: b\ncameras: &c [*c]\n"
    with pytest.raises(ConfigError, match=r"^agent.yaml:3: an alias refers to a value that holds it"):
        parse_config(itself, "agent.yaml")
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)
    ]
    laughs = "\n".join(levels) + "\nagent_id: a\nsite_id: b\ncameras: *l9\n"
    with pytest.raises(ConfigError, match=r"expand to more than 100,000 values"):
        parse_config(laughs, "agent.yaml")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(laughs)
    with pytest.raises(RecipeError, match=r"expand to more than 100,000 values"):
        load_recipe(recipe)
    shared = "poly: &p [[0, 0], [1, 0], [1, 1]]\nzones: [*p, *p, *p]\n"  # aliases used as YAML means them: fine
    from footfall.core.yamlerrors import structure_problem

    assert structure_problem(yaml.compose(shared, Loader=yaml.SafeLoader), "s.yaml") is None
