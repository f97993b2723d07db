"""One line for a YAML syntax error, at the line where the problem starts.

PyYAML reports where it gave up (``problem_mark``); for a bracket, brace or quote left open that is often
several lines later (the next key, or the end of the file), while ``context_mark`` points at the opening
character itself. Used for agent configs (:mod:`footfall.edge.config`) and training recipes
(:mod:`footfall.models.recipe`).
"""

from __future__ import annotations

import yaml

# PyYAML's contexts whose mark is an opening bracket, brace or quote (left open, most often), and their names.
_OPENED = {
    "while parsing a flow sequence": "the '[' that opens here",
    "while parsing a flow mapping": "the '{' that opens here",
    "while scanning a quoted scalar": "the quoted string that opens here",
}


def yaml_error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line where the problem starts: the opening ``[``, ``{`` or quote of something left open,
    otherwise where the parser stopped; None when PyYAML gives no position."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None
    if exc.context_mark is not None and exc.context in _OPENED:
        return exc.context_mark.line + 1
    if exc.problem_mark is not None:
        return exc.problem_mark.line + 1
    return None


def describe_yaml_error(exc: yaml.YAMLError, source: str) -> str:
    """``source:line: not valid YAML (what)``, one line; for a bracket or quote left open, it names the line
    where the parser noticed too, e.g. ``agent.yaml:11: not valid YAML (in the '[' that opens here: expected
    ',' or ']', but got ':' on line 14)``."""
    line = yaml_error_line(exc)
    where = f":{line}" if line is not None else ""
    marked = exc if isinstance(exc, yaml.MarkedYAMLError) else None
    problem = (marked.problem if marked is not None else None) or str(exc).splitlines()[0]
    opened = _OPENED.get(marked.context or "") if marked is not None else None
    if marked is not None and opened and line is not None:
        noticed = marked.problem_mark.line + 1 if marked.problem_mark is not None else line
        problem = f"in {opened}: {problem}" + (f" on line {noticed}" if noticed != line else "")
    return f"{source}{where}: not valid YAML ({problem})"


# Values a config or recipe may expand to, aliases followed: a few hundred in a real one. Each alias of an anchor is
# its whole value again, so nine levels of ten aliases each is a billion values ("billion laughs"), which a reader
# walking the values never finishes.
MAX_EXPANDED_VALUES = 100_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def alias_problem(root: yaml.Node | None, source: str, limit: int = MAX_EXPANDED_VALUES) -> str | None:
    """``source:line: ...`` for an alias inside the value it names (``a: &a [*a]``, a value that holds itself) or
    aliases that expand to more than ``limit`` values, else None. Each node is sized once (an alias is the node it
    names, shared), so this takes as long as the file, not as its expansion."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()  # the nodes whose children are being sized: a node met again among them holds itself
    stack: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, children_sized = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if children_sized:
            ancestors.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                return f"{source}:{line}: aliases here expand to more than {limit:,} values (an alias of an alias?)"
            continue
        if key in sizes:
            continue
        if key in ancestors:
            return f"{source}:{line}: an alias refers to a value that holds it (a value cannot contain itself)"
        ancestors.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    return None


def repeated_key(root: yaml.Node | None, source: str) -> str | None:
    """``source:line: key 'x' given twice (first on line n)`` for the first mapping key that appears twice, or None.
    PyYAML keeps the last of two equal keys without a word, so a config with two ``cameras:`` would run one camera
    and say nothing of the other. Each node is read once, however many aliases name it."""
    stack = [root] if root is not None else []
    read: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in read:
            continue
        read.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        return f"{source}:{line}: key {key.value!r} given twice (first on line {seen[key.value]})"
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return None


def structure_problem(root: yaml.Node | None, source: str) -> str | None:
    """What PyYAML reads without a word but a config or recipe must not hold: an alias that holds itself or expands
    past MAX_EXPANDED_VALUES (checked first: walking its values would never end), a key given twice. One line, or
    None."""
    return alias_problem(root, source) or repeated_key(root, source)
