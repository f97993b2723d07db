"""Every dashboard page is its own part of server/static put into one shared shell (head, top bar, footer)."""

from __future__ import annotations

import re

import pytest
from footfall.server.app import PAGES, STATIC

from tests.server.conftest import Server


@pytest.mark.parametrize(("path", "page"), [("/dashboard/", "index"), ("/dashboard/zone", "zone"),
                                            ("/dashboard/ad-placement.html", "ad-placement")])  # fmt: skip
def test_each_page_is_served_whole_inside_the_shell(sqlite_server: Server, path: str, page: str) -> None:
    response = sqlite_server.client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    title, script = PAGES[page]
    assert html.startswith("<!doctype html>") and html.count("<html") == html.count("<footer") == 1
    assert f"<title>{title} · footfall</title>" in html and "$" not in html
    (src,) = re.findall(r'<script type="module" src="/dashboard/static/([^"]+)"></script>', html)
    assert src == f"js/pages/{script}.js" and (STATIC / src).is_file()
    assert (STATIC / f"{page}.html").read_text(encoding="utf-8") in html
    assert '<header class="topbar" id="topbar"></header>' in html  # js/ui.js renders the top bar into it


def test_only_the_named_pages_are_served(sqlite_server: Server) -> None:
    for path in ("/dashboard/shell", "/dashboard/nope", "/dashboard/Zone", "/dashboard/..%2Fapp"):
        assert sqlite_server.client.get(path).status_code == 404, path
