"""The API docs page (/api/docs) works without internet: a mall's server often has none.

FastAPI's own Swagger UI page loads its JavaScript and CSS from a CDN, so offline it is a white page
("SwaggerUIBundle is not defined"). The server serves those files itself; every file the page names must be
this server's and answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import _require
from tests.server.conftest import Server

DOCS = "/api/docs"


class _Assets(HTMLParser):
    """The URLs a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _page_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    # The inline script's `url: '...'`: the OpenAPI document Swagger UI fetches.
    return parser.urls + re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", html)


def test_the_docs_page_loads_only_files_of_this_server(sqlite_server: Server) -> None:
    client = sqlite_server.client
    page = client.get(DOCS)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    urls = _page_urls(page.text)
    assert any("swagger-ui-bundle" in url and url.endswith(".js") for url in urls), urls
    assert any(url.endswith(".css") for url in urls), urls
    assert not re.findall(r"(?:https?:)?//[\w.-]+", page.text), "the page names another host"
    for url in urls:
        parts = urlsplit(urljoin("http://testserver" + DOCS, url))
        assert (parts.scheme, parts.netloc) == ("http", "testserver"), f"{url} is not same-origin"
        response = client.get(parts.path)
        assert response.status_code == 200, (url, response.status_code)
        assert response.content, url
    bundle = next(url for url in urls if "swagger-ui-bundle" in url)
    assert "SwaggerUIBundle" in client.get(bundle).text


def test_the_oauth2_redirect_page_names_no_other_host(sqlite_server: Server) -> None:
    page = sqlite_server.client.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page.text)


# ---- in a real headless Chromium, with every other host blocked ----

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture()
def live_url(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("uvicorn")
    from tests.server.test_dashboard_browser import start_server

    live, server, thread = start_server(f"sqlite:///{tmp_path / 'footfall.db'}")
    try:
        yield live.url
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)


@pytest.mark.browser
def test_the_docs_page_renders_with_other_hosts_blocked(live_url: str) -> None:
    if not CHROMIUM.exists():
        _require("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright is not installed (pip install playwright; no browser download is needed)")
    from tests.server.test_dashboard_browser import CHROMIUM_ARGS

    own = urlsplit(live_url).netloc
    blocked: list[str] = []
    errors: list[str] = []

    def only_this_server(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if urlsplit(url).netloc == own or url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route("**/*", only_this_server)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.goto(live_url + DOCS)
            page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            assert "footfall server" in page.locator(".swagger-ui .info .title").inner_text()
            page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
            assert page.locator(".swagger-ui .opblock").count() > 10
            assert page.locator(".swagger-ui .errors-wrapper").count() == 0
            context.close()
        finally:
            browser.close()
    assert not blocked, f"the docs page asked other hosts for {blocked}"
    assert not errors, f"console errors: {errors}"
