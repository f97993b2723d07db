"""The FastAPI application: API routers, dashboard files, error shapes, and background work on start."""

from __future__ import annotations

import functools
import gc
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from string import Template

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from footfall.core.logs import log_event
from footfall.server import migrate
from footfall.server.api import admin, agents, ingest, insights, sites, traffic, visitors
from footfall.server.api.body_limit import BodyLimit
from footfall.server.api.deps import ServerContext, require_metrics, single_valued_query
from footfall.server.api.http_layers import RequestMetrics, SecurityHeaders
from footfall.server.db import TRANSIENT_DB_ERRORS, Database, QueryTimeout, refused_statement
from footfall.server.ingest import Ingestor
from footfall.server.metrics import UNMATCHED, ServerCollector, ServerMetrics
from footfall.server.mqtt_consumer import MqttConsumer
from footfall.server.release import seen_until
from footfall.server.rollups import ensure_release, finish_refiles
from footfall.server.settings import Settings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount, compile_path

from footfall import __version__

logger = logging.getLogger("footfall.server")
STATIC = Path(__file__).resolve().parent / "static"
# Dashboard pages: /dashboard/<page> → (title, script static/js/pages/<script>.js). static/<page>.html holds what
# the page shows; static/shell.html is what every page shares around it (head, top bar, banner, footer).
PAGES = {"index": ("Overview", "overview"), "zone": ("Zone", "zone"), "ad-placement": ("Ad placement", "ads")}
API_PREFIX = "/api/v1"  # every API router is mounted under it once; routers carry only their own sub-prefix
DOCS_URL = "/api/docs"
# Swagger UI's JavaScript, CSS and icon, served from here: FastAPI's own docs page loads them from a CDN, and a
# mall's server often has no internet (the page was white: "SwaggerUIBundle is not defined").
DOCS_ASSETS_URL = "/api/docs-assets"
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"

DESCRIPTION = """Per-zone audience counts from footfall camera boxes: ingest, traffic series, gender split,
heatmaps and ad-placement ranking. Every `/api/v1` endpoint needs an API key (`X-API-Key: ffk_...` or
`Authorization: Bearer ffk_...`) of the role named in its summary; create one with
`footfall keys create --role viewer --name NAME`. Every count is a sum of released zone × hour cells: a cell
with 1 to k-1 people is withheld whole, a gender split unless each part is 0 or at least k, so no
combination of answers gives a withheld count back (see "Privacy" in server/API.md)."""


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = tuple(error.get("loc", ()))
        where = ".".join(str(p) for p in location if p != "body") or ("body" if location == ("body",) else "request")
        message = error.get("msg", "invalid")
        if location == ("body",) and error.get("type") == "missing":
            message = "a JSON object is required"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _body_not_json(request: Request, exc: RequestValidationError) -> str | None:
    """Why a body the route could not read is not JSON at all (curl's -d sends a form's type), or None. FastAPI
    parses a body as JSON only when its Content-Type says so, and reported anything else as 'Input should be a
    valid dictionary', naming neither the body nor the header."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type or content_type == "application/json" or content_type.endswith("+json"):
        return None
    if not any(tuple(error.get("loc", ()))[:1] == ("body",) for error in exc.errors()):
        return None
    return f"the request body must be JSON (Content-Type: application/json), not {content_type}"


STALLED_AFTER_S = 30.0
INTERNAL_ERROR = {"detail": "internal error; the server log has the details"}
DATABASE_UNAVAILABLE = {
    "status": "database_unavailable",
    "detail": "the database cannot answer now (down, restarting, full or locked); try again shortly. Agents keep "
    "their counts until the server's receipt, so nothing they counted is lost meanwhile",
}
# Every response: no sniffing, no framing (clickjacking), no referrer with a key in it. Dashboard pages may only
# run their own scripts and talk to this server; inline styles stay allowed (the charts set them).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Dashboard pages only: the API docs page (FastAPI's Swagger UI page) starts Swagger UI with an inline script.
DASHBOARD_CSP_HEADER = {"Content-Security-Policy": DASHBOARD_CSP}


# Apps of this process now serving (tests and reloads build several; the garbage collector is the process's).
_serving = 0
_serving_lock = threading.Lock()


def _serving_started() -> None:
    """What start loaded (modules, the app, the database engine) lives as long as the server: frozen out of the
    garbage collector's sight, so a full collection walks only what requests made. Unfrozen, about one request in
    twenty of a 90-day hourly series waited 75 ms more for one (bench/server_bench.py's p95). What was frozen and
    later becomes cyclic garbage waits for the last app to stop."""
    global _serving
    with _serving_lock:
        gc.collect()
        gc.freeze()
        _serving += 1


def _serving_stopped() -> None:
    """Unfreezes once no app of the process serves: one that builds apps again (tests, reloads) frees the old."""
    global _serving
    with _serving_lock:
        _serving -= 1
        if _serving == 0:
            gc.unfreeze()


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> FastAPI:
    """Builds the app. ``start_background`` runs the MQTT consumer and retention loop while it serves."""
    settings = settings or Settings.from_env()
    db = Database(settings.database_url)
    ingestor = Ingestor(
        db,
        settings.default_timezone,
        open_hour=settings.release_open_hour,
        release_delay=settings.release_delay_seconds,
        max_zones_per_site=settings.max_zones_per_site,
        max_sites=settings.max_sites,
        max_agents=settings.max_agents,
        max_bucket_age_days=settings.max_bucket_age_days,
    )
    ctx = ServerContext(settings=settings, db=db, ingestor=ingestor)
    if settings.migrate_on_start:
        migrate.upgrade(db.engine)
    if problems := db.durability_problems():
        log_event(
            logger,
            logging.WARNING,
            "the database may lose commits in a crash, and with them counts whose receipts told agents to forget "
            "them; turn these settings back on (full_page_writes may stay off on storage that cannot tear a page, "
            "such as ZFS)",
            settings=",".join(problems),
        )
    seen_end = seen_until(time.time(), settings.release_open_hour, settings.release_delay_seconds)
    if ensure_release(db, settings.k_anonymity, seen_end):
        log_event(logger, logging.INFO, "released values computed", k=settings.k_anonymity)
    for site_id in finish_refiles(db):
        log_event(logger, logging.INFO, "finished a time-zone change left half done", site=site_id)
    metrics = ServerMetrics(
        ServerCollector(
            db,
            ctx.ingestor.counters,
            lambda: ctx.background,
            offline_after_s=settings.agent_offline_after_s,
            stalled_after_s=STALLED_AFTER_S,
            schema_revision=lambda: migrate.current_revision(db.engine),
        )
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_background:
            from footfall.server.background import start_background_work

            ctx.background.extend(start_background_work(ctx))
        metrics_server = None
        if settings.metrics_port is not None:
            from prometheus_client import start_http_server

            metrics_server, _ = start_http_server(settings.metrics_port, registry=metrics.registry)
            log_event(logger, logging.INFO, "metrics served without a key", port=settings.metrics_port)
        _serving_started()
        try:
            yield
        finally:
            _serving_stopped()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            for worker in reversed(ctx.background):
                worker.stop()
            ctx.background.clear()
            db.dispose()

    app = FastAPI(
        title="footfall server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # _mount_api_docs: the same page, with Swagger UI's files served from here
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.context = ctx
    app.state.metrics = metrics
    # Added first, so innermost: its 413 still passes the security headers and the request metrics below. Ingest
    # bounds its own batches, after the agent's key (api.ingest).
    app.add_middleware(BodyLimit, exempt={f"{API_PREFIX}/ingest"})
    mounts: list[str] = []  # the mounted apps' paths (the dashboard's files), filled once the routes are in

    @functools.cache
    def api_paths() -> list[tuple[re.Pattern[str], str]]:
        """The API's path templates as patterns, from its OpenAPI document. Built when a request that no route
        answered first needs them, not at start: building the document costs half a second of CPU (more than the
        rest of create_app), which every server start, and every test's app, would pay for a rare label."""
        return [(compile_path(path)[0], path) for path in app.openapi()["paths"]]

    app.add_middleware(
        RequestMetrics,
        observe=lambda scope, status, seconds: metrics.observe_request(
            _route_label(Request(scope), api_paths, mounts), scope["method"], status, seconds
        ),
    )
    app.add_middleware(SecurityHeaders, headers=SECURITY_HEADERS, per_prefix={"/dashboard": DASHBOARD_CSP_HEADER})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (not_json := _body_not_json(request, exc)) is not None:
            return JSONResponse({"detail": not_json}, status_code=415)
        return JSONResponse({"detail": _describe(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(QueryTimeout)
    async def _query_timeout(request: Request, exc: QueryTimeout) -> JSONResponse:
        path = request.url.path
        log_event(logger, logging.WARNING, "query stopped at its time limit", path=path, limit_s=exc.limit_s)
        detail = (
            f"the query ran past the server's {exc.limit_s:g} s limit (FOOTFALL_QUERY_TIMEOUT_S) and was stopped: "
            "the database is busy or locked (a migration or maintenance), or the request asks for a lot; "
            "try again shortly, or ask for a shorter range or fewer zones"
        )
        retry_after = str(max(1, round(exc.limit_s)))
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": retry_after})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_event(logger, logging.ERROR, "request failed", path=request.url.path, error=repr(exc)[:300])
        return JSONResponse(INTERNAL_ERROR, status_code=500)

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        if refused_statement(exc):  # a bug, as any other; the traceback goes to the log (no middleware re-raises)
            logger.error("request failed", exc_info=exc, extra={"fields": {"path": request.url.path}})
            return JSONResponse(INTERNAL_ERROR, status_code=500)
        ctx.database_down.occurred(path=request.url.path, error=repr(exc)[:300])
        return JSONResponse(DATABASE_UNAVAILABLE, status_code=503, headers={"Retry-After": "5"})

    for database_error in TRANSIENT_DB_ERRORS:  # down, restarting, full or locked: try again shortly
        app.add_exception_handler(database_error, _database_error)

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(single_valued_query)])
    for router in (
        ingest.router,
        sites.read,
        sites.admin,
        traffic.router,
        insights.router,
        visitors.router,
        agents.router,
        admin.router,
    ):
        api.include_router(router)
    app.include_router(api)

    @app.get("/healthz", tags=["health"], summary="Liveness, database and MQTT ingest check (public)")
    def healthz() -> JSONResponse:
        """503 with status 'stalled' when MQTT ingest has failed to store anything for STALLED_AFTER_S seconds
        (an unreachable database), or 'mqtt_unreachable' when the MQTT consumer has not been connected and
        subscribed for as long: aggregates then queue on the broker and agents, and an operator must know."""
        revision = migrate.current_revision(db.engine)
        ctx.database_down.ended()
        consumers = [worker for worker in ctx.background if isinstance(worker, MqttConsumer)]
        stalled = max((consumer.stalled_seconds() for consumer in consumers), default=0.0)
        away = max((consumer.unsubscribed_seconds() for consumer in consumers), default=0.0)
        body: dict[str, str | float | None] = {"status": "ok", "version": __version__, "schema_revision": revision}
        if stalled >= STALLED_AFTER_S:
            body |= {"status": "stalled", "ingest_stalled_seconds": round(stalled, 1)}
            return JSONResponse(body, status_code=503)
        if away >= STALLED_AFTER_S:  # a broker down, or a mistyped MQTT_URL: nothing is ingested over MQTT
            body |= {"status": "mqtt_unreachable", "mqtt_unreachable_seconds": round(away, 1)}
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics, text format (role: metrics or admin)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "The Prometheus text format."}},
        dependencies=[Depends(require_metrics)],
    )
    def prometheus_metrics() -> Response:
        """Every metric of this server process (server/API.md, "Metrics"); scrape with `Authorization: Bearer`."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _mount_api_docs(app)
    _mount_dashboard(app)
    mounts.extend(route.path for route in app.routes if isinstance(route, Mount))
    return app


def _route_label(
    request: Request, api_paths: Callable[[], list[tuple[re.Pattern[str], str]]], mounts: list[str]
) -> str:
    """The route template that answered (``/api/v1/sites/{site_id}/...``), a mount's path with ``/{path}``, or
    "unmatched": never the raw path, so the label's values stay few whatever clients ask for. A request refused
    before routing (the body limit's 413) is labelled with the API path it was sent to."""
    path = request.url.path
    route = request.scope.get("route")
    if route is None:
        inside = path.removeprefix(request.scope.get("root_path", "") or "")
        for pattern, api_path in api_paths():
            if pattern.match(inside):
                return api_path
    template = getattr(route, "path", None)
    if isinstance(template, str) and ":path}" not in template:
        # A router's route knows its path below the router's prefix only (in recent FastAPI): the prefix is the
        # path's leading segments, literal, as no prefix here holds a parameter.
        segments, own = path.split("/"), template.count("/")
        if len(segments) > own:
            return "/".join(segments[: len(segments) - own]) + template
    for mount in mounts:
        if path.startswith(mount + "/"):
            return mount + "/{path}"
    return UNMATCHED


def _mount_api_docs(app: FastAPI) -> None:
    """FastAPI's Swagger UI page at DOCS_URL (and its OAuth2 redirect page, as FastAPI adds it), naming only files
    of this server: the page works without internet."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="api-docs-assets")
    openapi_url, redirect_url = app.openapi_url, app.swagger_ui_oauth2_redirect_url
    assert openapi_url is not None and redirect_url is not None

    @app.get(DOCS_URL, include_in_schema=False)
    def _docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect_url, include_in_schema=False)
    def _docs_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _mount_dashboard(app: FastAPI) -> None:
    """Dashboard pages are plain files in server/static: /dashboard/<page> serves static/<page>.html inside
    static/shell.html, and /dashboard/static/<path> the assets. They hold no data; the page's JavaScript calls
    the API with a key."""
    app.mount("/dashboard/static", StaticFiles(directory=STATIC, check_dir=False), name="dashboard-static")

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard", include_in_schema=False)
    def _dashboard_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard/", include_in_schema=False)
    def _index() -> HTMLResponse:
        return _page("index")

    @app.get("/dashboard/{page}", include_in_schema=False)
    def _named(page: str) -> HTMLResponse:
        return _page(page.removesuffix(".html"))


def _page(name: str) -> HTMLResponse:
    """The page's own part put into the shell; read on each request, like any static file."""
    if name not in PAGES:
        raise HTTPException(404, f"no dashboard page {name!r}")
    title, script = PAGES[name]
    shell = Template((STATIC / "shell.html").read_text(encoding="utf-8"))
    content = (STATIC / f"{name}.html").read_text(encoding="utf-8")
    html = shell.substitute(title=title, script=script, content=content)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
