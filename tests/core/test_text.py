"""Counts in messages: "1 zone", "2 zones", never "1 zones"."""

from __future__ import annotations

from footfall.core.text import plural, plural_noun


def test_plural() -> None:
    assert [plural(n, "zone") for n in (0, 1, 2)] == ["0 zones", "1 zone", "2 zones"]
    assert plural(1, "person", "people") == "1 person"
    assert plural(3, "person", "people") == "3 people"
    assert plural_noun(1, "line") == "line" and plural_noun(4, "line") == "lines"
