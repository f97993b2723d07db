"""Words for counts in messages people read: ``plural(1, "zone")`` is "1 zone", ``plural(2, "zone")`` "2 zones".

The dashboard has the same pair in ``server/static/js/format.js`` (``plural``, ``pluralNoun``).
"""

from __future__ import annotations


def plural_noun(count: int, singular: str, many: str | None = None) -> str:
    """The word for ``count``: ``singular`` for exactly one, else ``many`` (default: ``singular`` + "s")."""
    return singular if count == 1 else (many if many is not None else f"{singular}s")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``count`` and its word: "1 zone", "0 zones", "3 people" (``plural(3, "person", "people")``)."""
    return f"{count} {plural_noun(count, singular, many)}"
