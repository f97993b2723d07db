"""What every route needs: the server context, the caller's key and role, and the common query parameters."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, get_args, get_origin

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from footfall.core.logs import OncePer, log_event
from footfall.server.auth import Principal, authenticate
from footfall.server.auth_limit import FailedAuthLimiter, LockedOut
from footfall.server.db import Database
from footfall.server.ingest import Ingestor
from footfall.server.localtime import EARLIEST, HOUR, LATEST, hour_ceil, whole_days_from
from footfall.server.release import released_end
from footfall.server.settings import Settings
from footfall.server.tables import Site, Zone
from sqlalchemy import select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from footfall.server.mqtt_consumer import MqttConsumer
    from footfall.server.retention import RetentionLoop

logger = logging.getLogger("footfall.server.auth")


@dataclass
class ServerContext:
    settings: Settings
    db: Database
    ingestor: Ingestor
    background: list[MqttConsumer | RetentionLoop] = field(default_factory=list)
    auth_failures: FailedAuthLimiter = field(init=False)  # failed API-key attempts per client address
    database_down: OncePer = field(init=False)  # requests answered 503 because the database cannot answer

    def __post_init__(self) -> None:
        self.auth_failures = FailedAuthLimiter(self.settings.auth_failures_per_minute, window_s=60.0)
        self.database_down = OncePer(
            logging.getLogger("footfall.server"),
            "the database cannot answer; requests are answered 503 until it can",
            recovery="the database answers requests again",
            count_as="requests_refused",
        )

    def read(self) -> AbstractContextManager[Session]:
        """A read session for a request: its queries stop at ``Settings.query_timeout_s`` (503 for the client)."""
        return self.db.read(limit_s=self.settings.query_timeout_s)


def context(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


Context = Annotated[ServerContext, Depends(context)]


def read_session(ctx: Context) -> Iterator[Session]:
    with ctx.read() as session:
        yield session


# Requests whose session is open at once, per event loop (the rest wait without a thread), and that session closed as
# the endpoint returns, before the response is sent. Each session holds a pooled connection (SQLite's pool 15,
# PostgreSQL's 16) while its request hops from the dependency's worker thread to the endpoint's: sixty requests at
# once filled AnyIO's 40 threads with requests waiting for a connection while those holding one waited for a
# thread, until the pool's 30 s timeout (503s); and a client reading its answer slowly held its connection all the
# while. 8 leaves the rest to key lookups, the background jobs and MQTT ingest.
READ_SESSIONS_AT_ONCE = 8
ReadSession = Annotated[Session, Depends(read_session, scope="function", max_concurrency=READ_SESSIONS_AT_ONCE)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`ffk_...`).")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


class Require:
    """Dependency that admits only keys of the given roles: no key → 401, another role → 403, and 429 for an address
    that has failed too often (``Settings.auth_failures_per_minute``)."""

    def __init__(self, *roles: str):
        self.roles = roles

    def __call__(
        self,
        ctx: Context,
        request: Request,
        header_key: Annotated[str | None, Security(_api_key_header)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    ) -> Principal:
        key = header_key or (bearer.credentials if bearer else None)
        if not key:
            raise HTTPException(
                401,
                "missing API key: send it as 'X-API-Key: ffk_...' or 'Authorization: Bearer ffk_...'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = _authenticate(ctx, request, key)
        if principal.role not in self.roles:
            raise HTTPException(
                403,
                f"this key has role '{principal.role}'; this endpoint needs {' or '.join(repr(r) for r in self.roles)}",
            )
        return principal


def _authenticate(ctx: ServerContext, request: Request, key: str) -> Principal:
    """Looks the key up, unless its address is locked out for failing too often. A locked-out address gets 429 even
    for a good key: were a good key let through, a guesser could tell a hit (200) from a miss (429) and keep
    guessing. A wrong role is not a failure (the key is good); neither is a database fault."""
    limiter = ctx.auth_failures
    client = request.client.host if request.client else "unknown"
    try:
        attempt = limiter.attempt(client)
    except LockedOut as locked:  # or TooManyInFlight: its detail says which
        raise HTTPException(
            429,
            f"{locked.detail}; try again in {locked.retry_after} s",
            headers={"Retry-After": str(locked.retry_after)},
        ) from None
    try:
        with ctx.read() as session:
            principal = authenticate(session, key)
    except BaseException:
        limiter.take_back(attempt)  # the key was never judged
        raise
    ctx.database_down.ended()  # every request with a key reads it in the database: it answers
    if principal is None:
        if limiter.failed(attempt):
            log_event(
                logger,
                logging.WARNING,
                "API key failures over the limit; address locked out",
                client=client,
                failures=limiter.per_window,
                window_s=int(limiter.window_s),
                retry_after_s=limiter.retry_after(client),
            )
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    limiter.take_back(attempt)
    return principal


require_agent = Require("agent")
require_viewer = Require("viewer", "admin")
require_admin = Require("admin")
require_metrics = Require("metrics", "admin")  # GET /metrics: a Prometheus scraper's key, or an admin's

MAX_RANGE = {
    "hour": timedelta(days=400),
    "day": timedelta(days=3700),
    "week": timedelta(days=3700),
}


@dataclass(frozen=True)
class TimeRange:
    start: int
    end: int


def _utc(value: datetime, name: str) -> datetime:
    try:
        converted = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        converted = None
    if converted is None or not EARLIEST <= converted <= LATEST:
        raise HTTPException(422, f"{name}: {value.isoformat()} is outside the supported years 2000-2099")
    return converted


def time_range(
    start: Annotated[
        datetime | None, Query(description="Range start, ISO 8601 (UTC if no offset). Default: end − 7 days.")
    ] = None,
    end: Annotated[datetime | None, Query(description="Range end, exclusive. Default: now.")] = None,
) -> TimeRange:
    stop = _utc(end, "end") if end else datetime.now(UTC)
    begin = _utc(start, "start") if start else stop - timedelta(days=7)
    if stop <= begin:
        raise HTTPException(422, f"end ({stop.isoformat()}) must be after start ({begin.isoformat()})")
    return TimeRange(int(begin.timestamp()), int(stop.timestamp()))


def check_span(span: TimeRange, granularity: str) -> None:
    limit = MAX_RANGE[granularity]
    if span.end - span.start > limit.total_seconds():
        raise HTTPException(
            422,
            f"granularity '{granularity}' covers at most {limit.days} days per request; "
            "narrow the range or use a coarser granularity",
        )


def released(span: TimeRange, ctx: ServerContext) -> TimeRange:
    """The part of ``span`` that may be answered, in the whole hours it counts: it stops at the hour in progress,
    and before an hour that ended less than the release delay ago (footfall.server.release).

    An hour is the finest unit released, and it counts where it starts in ``span``: so the part begins at the
    first hour start in ``span`` and ends where the last hour counted ends, and the answer's start and end state
    what it counts. A window from 13:59:59 to 14:00:01 counted the whole 14:00 hour and said it covered two
    seconds; 13:30 to 13:45 counted nothing and said it covered a quarter of an hour. Where the open hour is
    released and the last hour counted has not ended, the end stays as asked (that hour counts so far)."""
    settings = ctx.settings
    now = time.time()
    start = hour_ceil(span.start)
    hours_end = hour_ceil(span.end)
    end = released_end(
        hours_end if hours_end <= now else span.end, now, settings.release_open_hour, settings.release_delay_seconds
    )
    return TimeRange(start, max(start, end))


def covered(span: TimeRange, granularity: str, tz: str) -> TimeRange:
    """The part of ``span`` (from :func:`released`) a series of ``granularity`` counts, which its answer states:
    days (and the weeks made of them) are counted from the first local midnight in the range, never from the
    middle of one; a first day cut short would otherwise be left out while the answer's start said it was in.

    ``span`` starts on a whole hour, and in a half-hour time zone a local midnight falls within the hour before it
    (Kolkata's at 18:30Z, the range moved up to 19:00Z): that day's hours all start in the range (its first cell
    starts at 19:00Z), so it counts whole and the answer starts at its midnight. Without this a day series from
    a Kolkata midnight left its first day out."""
    if granularity == "hour":
        return span
    return TimeRange(whole_days_from(span.start - HOUR + 1, span.end, granularity, tz), span.end)


Range = Annotated[TimeRange, Depends(time_range)]
ZonesParam = Annotated[
    list[str] | None,
    Query(
        alias="zone",
        description="Zone id; repeat for several (`zone=a&zone=b`). Default: every zone of the site.",
        max_length=500,
    ),
]


def get_site(session: Session, site_id: str) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise HTTPException(404, f"no site {site_id!r}")
    return site


def get_zones(session: Session, site: Site, zone_ids: list[str] | None) -> list[Zone]:
    query = select(Zone).where(Zone.site_id == site.site_id).order_by(Zone.zone_id)
    zones = list(session.scalars(query))
    if not zone_ids:
        return zones
    by_id = {zone.zone_id: zone for zone in zones}
    missing = [z for z in zone_ids if z not in by_id]
    if missing:
        raise HTTPException(404, f"site {site.site_id!r} has no zone {', '.join(repr(m) for m in missing)}")
    return [by_id[z] for z in dict.fromkeys(zone_ids)]


# The attributes of a route that hold its query parameters that take several values, and all its query parameters
# (worked out once per route).
_REPEATABLE = "_footfall_repeatable_query"
_ACCEPTED = "_footfall_accepted_query"


def _accepted(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _accepted(sub)
    return frozenset(names)


def _repeatable(dependant: Dependant) -> frozenset[str]:
    names = {
        param.alias
        for param in dependant.query_params
        if get_origin(param.field_info.annotation) in (list, set, tuple)
        or any(get_origin(arg) in (list, set, tuple) for arg in get_args(param.field_info.annotation))
    }
    for sub in dependant.dependencies:
        names |= _repeatable(sub)
    return frozenset(names)


def single_valued_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not take, and for one given twice that takes one value: FastAPI
    ignores the first and keeps the last of the second, saying nothing, so ``granularty=day`` answered hours,
    ``zones=a`` every zone, ``age=18-24&age=25-34`` ranked one band and ``start`` given twice answered another range
    than asked."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    repeatable: frozenset[str] | None = getattr(route, _REPEATABLE, None)
    accepted: frozenset[str] | None = getattr(route, _ACCEPTED, None)
    if repeatable is None or accepted is None:
        repeatable, accepted = _repeatable(route.dependant), _accepted(route.dependant)
        setattr(route, _REPEATABLE, repeatable)
        setattr(route, _ACCEPTED, accepted)
    unknown = sorted({name for name in request.query_params if name not in accepted})
    if unknown:
        takes = f"it takes {', '.join(sorted(accepted))}" if accepted else "it takes no query parameters"
        raise HTTPException(422, f"{unknown[0][:64]}: not a query parameter of this endpoint ({takes})")
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, n in counts.items() if n > 1 and name not in repeatable)
    if repeated:
        raise HTTPException(
            422, f"{repeated[0]}: given {counts[repeated[0]]} times; it takes one value (see the API's parameters)"
        )
