"""``footfall server`` and ``footfall keys`` commands. Light at import time: only typer and the stdlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from footfall.server.db import Database
    from footfall.server.settings import Settings

SERVER_MODULES = ("fastapi", "fastapi_offline", "uvicorn", "sqlalchemy", "alembic")


def _require_server(*extra: str) -> None:
    from footfall.core.extras import require

    require("server", *SERVER_MODULES, *extra)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _check_listen_address(host: str, port: int) -> None:
    """Stops with one line naming --host or --port when the server could not listen there, before the database is
    touched: uvicorn said only "[Errno -2] Name or service not known" for --host 999.1.1.1, after migrating.

    Binds as uvicorn's asyncio server will: every address the name gives ('' is every interface), an IPv6 one
    IPv6-only, a family this machine cannot open skipped (IPv6 switched off), TIME_WAIT no obstacle."""
    import socket

    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        _fail(f"--host {host!r}: not an address or name of this machine ({getattr(exc, 'strerror', None) or exc})")
    opened = 0
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue  # as asyncio: a family the kernel does not offer here is left out, not an error
        with probe:
            opened += 1
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                _fail(f"cannot listen on --host {host} --port {port} ({exc.strerror or exc})")
    if not opened:
        _fail(f"--host {host!r}: this machine cannot open a socket for any of its addresses")


def _settings(database_url: str | None, **overrides: object) -> Settings:
    from footfall.server.settings import Settings
    from pydantic import ValidationError

    try:
        return Settings.from_env(database_url=database_url, **overrides)
    except ValidationError as exc:
        _fail("; ".join(f"{_setting_named(str(e['loc'][0]) if e['loc'] else '')}: {e['msg']}" for e in exc.errors()))


def _setting_named(field: str) -> str:
    """How the user gave a setting: its environment variable with the value set (``FOOTFALL_K_ANON='abc'``), not
    the field's name in the code, which they never wrote; the field's name where no variable is set."""
    import os

    from footfall.server.settings import Settings

    info = Settings.model_fields.get(field)
    variable = info.validation_alias if info is not None else None
    if isinstance(variable, str) and variable in os.environ:
        return f"{variable}={os.environ[variable]!r}"
    return field


def _sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (absolute), or None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("mode") == "memory" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def _cannot_open(url: str, exc: Exception) -> str:
    """Why the database at ``url`` cannot be opened, with its password as ***: an error goes to a terminal or a
    journal, the password must not (nor where the driver quotes it in its message)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"cannot open database {url!r}: {error}"  # not a URL, so nothing in it is a password field
    if parsed.password:
        error = error.replace(str(parsed.password), "***")
    return f"cannot open database {parsed.render_as_string(hide_password=True)!r}: {error}"


def _database(database_url: str | None, *, create: bool = False) -> Database:
    """Opens the database and migrates it to the newest schema.

    The default URL, sqlite:///footfall.db, names a file in the current folder. Only the commands that set up
    a server (``footfall server``, ``server migrate``: ``create``) make that file when it is missing; the others
    (keys, zones, retention) refuse rather than write, say, a key into a new database that no server reads. An
    SQLite file made here, from the default or from a given URL, is named on stderr."""
    from footfall.server import migrate
    from footfall.server.db import Database
    from sqlalchemy.exc import SQLAlchemyError

    settings = _settings(database_url)
    file = _sqlite_file(settings.database_url)
    new = file is not None and not file.exists()
    if new and not create and not database_url:
        _fail(
            f"no database at {file} (the default, {settings.database_url}, is a file in the current folder); "
            "run this in the folder `footfall server` runs in, or pass --database-url or set DATABASE_URL"
        )
    try:
        db = Database(settings.database_url)
        migrate.upgrade(db.engine)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        _fail(_cannot_open(settings.database_url, exc))
    if new:
        other = "" if database_url else "; --database-url or DATABASE_URL chooses another"
        typer.secho(f"created the SQLite database {file}{other}", err=True)
    return db


IDENTIFIER_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 64"

DatabaseOption = typer.Option(
    None,
    "--database-url",
    envvar="DATABASE_URL",
    help="SQLAlchemy URL; default sqlite:///footfall.db (WAL). PostgreSQL: postgresql://user@host/db.",
)


def register(app: typer.Typer) -> None:
    server = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    keys = typer.Typer(
        help="Manage API keys (roles: agent = ingest, viewer = read, admin = manage, metrics = /metrics only).\n\n"
        "Example: footfall keys create --role viewer --name 'ad team'",
        no_args_is_help=True,
    )
    zones = typer.Typer(
        help="Name and classify zones (entrance, food_court, ad_slot, ...).\n\n"
        "Example: footfall zones set mall-1 fc-north --name 'Food court north' --kind food_court",
        no_args_is_help=True,
    )

    @server.callback()
    def serve(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", envvar="FOOTFALL_HOST", help="Interface to listen on."),
        port: int = typer.Option(8000, "--port", envvar="FOOTFALL_PORT", min=1, max=65535, help="HTTP port."),
        mqtt: str | None = typer.Option(
            None,
            "--mqtt",
            envvar="MQTT_URL",
            help="Also consume MQTT, e.g. mqtt://server:secret@localhost:1883.",
        ),
        database_url: str | None = DatabaseOption,
        k_anon: int | None = typer.Option(
            None,
            "--k-anon",
            envvar="FOOTFALL_K_ANON",
            help="Zone × hour cells with 1 to k-1 people are withheld, and a gender split unless each part is "
            "0 or at least k (default 5).",
        ),
        release_open_hour: bool = typer.Option(
            False,
            "--release-open-hour",
            envvar="FOOTFALL_RELEASE_OPEN_HOUR",
            help="Also answer with the hour in progress (live, but two refreshes show who came by between them).",
        ),
        release_delay: int | None = typer.Option(
            None,
            "--release-delay",
            envvar="FOOTFALL_RELEASE_DELAY",
            help="Answer for an ended hour this many seconds after its end, once its last buckets have arrived "
            "(default 600; at least the agents' bucket length plus delivery time).",
        ),
    ) -> None:
        """Run the central server: API, dashboard and (with --mqtt) the MQTT consumer; migrates first.

        Subcommands: `migrate` (schema only), `retention` (drop old raw buckets).

        Example: footfall server --mqtt mqtt://localhost:1883 --port 8000
        then open http://127.0.0.1:8000/dashboard/ and http://127.0.0.1:8000/api/docs
        """
        if ctx.invoked_subcommand is not None:
            return
        _require_server("paho")
        import uvicorn
        from footfall.server.app import create_app
        from footfall.server.mqtt_consumer import parse_mqtt_url

        _check_listen_address(host, port)
        settings = _settings(
            database_url,
            mqtt_url=mqtt,
            k_anonymity=k_anon,
            release_open_hour=release_open_hour or None,
            release_delay_seconds=release_delay,
        )
        if settings.mqtt_url:
            try:
                parse_mqtt_url(settings.mqtt_url)
            except ValueError as exc:
                _fail(str(exc))
        _database(database_url, create=True)
        from footfall.server.exposure import demo_credentials_warning

        warning = demo_credentials_warning(host, {"DATABASE_URL": settings.database_url, "MQTT_URL": settings.mqtt_url})
        if warning:
            typer.secho(warning, fg="yellow", err=True)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")

    @server.command("migrate")
    def migrate_command(database_url: str | None = DatabaseOption) -> None:
        """Create or upgrade the database schema to the newest revision.

        Example: DATABASE_URL=postgresql://footfall@db/footfall footfall server migrate
        """
        _require_server()
        from footfall.server.migrate import current_revision

        db = _database(database_url, create=True)
        typer.echo(f"database at revision {current_revision(db.engine)}")

    @server.command("retention")
    def retention_command(
        days: int = typer.Option(
            None,
            "--days",
            envvar="FOOTFALL_RETENTION_DAYS",
            min=1,
            help="Keep this many days of raw minute buckets (default: the server's setting, 35 unless set; "
            "a site with a shorter retention of its own keeps fewer).",
        ),
        database_url: str | None = DatabaseOption,
    ) -> None:
        """Delete raw minute buckets older than --days (or a site's own, shorter retention); hourly and daily
        rollups are kept. The server runs this every hour by itself.

        Example: footfall server retention --days 30
        """
        _require_server()
        from footfall.server.retention import run_retention

        db = _database(database_url)
        result = run_retention(db, days or _settings(database_url).retention_days)
        from footfall.server.localtime import to_iso

        before = f"before {to_iso(result.cutoff)}" if result.cutoff else "(the server keeps them forever)"
        typer.echo(
            f"deleted {result.raw_deleted} raw buckets {before} "
            f"and {result.dead_letters_deleted} old dead letters; rollups kept"
        )

    @keys.command("create")
    def create(
        role: str = typer.Option(..., "--role", help="agent, viewer, admin or metrics."),
        name: str = typer.Option(..., "--name", help="Who or what uses the key."),
        agent: str | None = typer.Option(None, "--agent", help="Bind an agent key to this agent id."),
        site: str | None = typer.Option(
            None,
            "--site",
            help="Bind an agent key to this site: it may then add counts to that site's zones only. Do, for every "
            "agent key: one that may write any site's zones could add counts it knows to a withheld cell until "
            "it is released, and subtract them to read the withheld people.",
        ),
        database_url: str | None = DatabaseOption,
    ) -> None:
        """Create an API key and print it once (only its hash is stored).

        Example: footfall keys create --role viewer --name "ad team"
        Example: footfall keys create --role agent --name "box 1" --agent box-1 --site riverside
        """
        _require_server()
        from footfall.server.api.schemas import KeyCreate
        from footfall.server.auth import ROLES, create_key
        from pydantic import ValidationError

        # What POST /api/v1/admin/keys takes, checked the same way: a key bound to an id no agent can send is refused
        # at every ingest, far from here.
        options = {"name": "--name", "role": "--role", "agent_id": "--agent", "site_id": "--site"}
        given = {"name": name, "role": role, "agent_id": agent, "site_id": site}
        try:
            KeyCreate.model_validate(given)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
            if field == "role":
                _fail(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
            if field in ("agent_id", "site_id") and error["type"] == "string_pattern_mismatch":
                _fail(f"{options[field]} {given[field]!r}: {IDENTIFIER_RULE}")
            _fail(f"{options.get(field, field)}: {error['msg'].removeprefix('Value error, ')}")
        db = _database(database_url)
        try:
            with db.write() as session:
                plaintext, row = create_key(session, name, role, agent, site)
        except ValueError as exc:
            _fail(str(exc))
        typer.echo(plaintext)
        if role == "agent" and site is None:
            typer.secho(
                "warning: this agent key may add counts to any site's zones; bind it with --site <site>", err=True
            )
        typer.secho(f"created {role} key #{row.id} '{name}'; store it now, it is not shown again", err=True)

    @keys.command("list")
    def list_keys(database_url: str | None = DatabaseOption) -> None:
        """List keys (id, role, name, prefix), never their secrets.

        Example: footfall keys list
        """
        _require_server()
        from footfall.server.tables import ApiKey
        from sqlalchemy import select

        db = _database(database_url)
        with db.read() as session:
            for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
                state = "revoked" if row.revoked_at else "active"
                typer.echo(
                    f"{row.id:4d}  {row.role:6s}  {state:7s}  {row.prefix}…  {row.name}"
                    + (f"  (agent {row.agent_id})" if row.agent_id else "")
                    + (f"  (site {row.site_id})" if row.site_id else "")
                )

    @keys.command("revoke")
    def revoke(
        key_id: int = typer.Argument(..., min=1, max=2**63 - 1, help="Id from `footfall keys list`."),
        database_url: str | None = DatabaseOption,
    ) -> None:
        """Revoke a key; requests with it get 401 from now on.

        Example: footfall keys revoke 3
        """
        _require_server()
        from footfall.server.auth import revoke_key

        db = _database(database_url)
        with db.write() as session:
            if not revoke_key(session, key_id):
                _fail(f"no active key with id {key_id}")
        typer.echo(f"revoked key #{key_id}")

    @zones.command("set")
    def set_zone(
        site: str = typer.Argument(..., help="Site id."),
        zone: str = typer.Argument(..., help="Zone id (as the agent sends it)."),
        name: str | None = typer.Option(None, "--name", help="Display name, e.g. 'Food court north'."),
        kind: str | None = typer.Option(
            None, "--kind", help="entrance, corridor, food_court, ad_slot, shop_front, exit, other, unknown."
        ),
        floor: str | None = typer.Option(None, "--floor", help="Floor label, e.g. 'L1'."),
        database_url: str | None = DatabaseOption,
    ) -> None:
        """Create or edit a zone (sites and zones also appear on their first aggregate).

        Example: footfall zones set mall-1 fc-north --name "Food court north" --kind food_court --floor L2
        """
        _require_server()
        from footfall.core.wire import Identifier
        from footfall.server.api.schemas import ZoneUpdate
        from footfall.server.catalog import save_zone
        from footfall.server.tables import ZONE_KINDS
        from pydantic import TypeAdapter, ValidationError

        # What the admin API takes, checked the same way: the ids an agent can send, the names PostgreSQL stores.
        for what, value in (("site", site), ("zone", zone)):
            try:
                TypeAdapter(Identifier).validate_python(value)
            except ValidationError:
                _fail(f"{what} {value!r}: {IDENTIFIER_RULE}")
        if kind is not None and kind not in ZONE_KINDS:
            _fail(f"--kind {kind!r} is not one of {', '.join(ZONE_KINDS)}")
        given = {name: value for name, value in (("name", name), ("floor", floor), ("kind", kind)) if value is not None}
        try:
            changes = ZoneUpdate.model_validate(given).model_dump(exclude_unset=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            _fail(f"--{error['loc'][0]}: {error['msg'].removeprefix('Value error, ')}")
        db = _database(database_url)
        settings = _settings(database_url)
        with db.write() as session:
            row = save_zone(session, site, zone, changes, settings.default_timezone)
        typer.echo(f"zone {site}/{zone}: name={row.name!r} kind={row.kind} floor={row.floor}")

    app.add_typer(server, name="server")
    app.add_typer(keys, name="keys")
    app.add_typer(zones, name="zones")
