"""Schema migrations with Alembic, configured in code so the installed package needs no alembic.ini."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from footfall.core.logs import log_event
from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger("footfall.server.migrate")
# Alembic narrates every plugin and context at INFO; footfall logs the outcome itself.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Brings the database to ``revision`` (default: the newest); returns the revision it is at afterwards."""
    from alembic import command

    before = current_revision(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    after = current_revision(engine)
    if after != before:
        log_event(logger, logging.INFO, "database migrated", from_revision=before, to_revision=after)
    return after


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
