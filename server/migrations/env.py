"""Alembic environment: configured programmatically by ``footfall.server.migrate`` (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context
from footfall.server.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through footfall.server.migrate (footfall server migrate)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
