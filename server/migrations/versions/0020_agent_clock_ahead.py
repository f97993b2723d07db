"""``agents.clock_ahead_s``: how far an agent's clock ran ahead of the server's when its last status came.

Counts dated more than 15 minutes ahead of the server's clock were refused for good; they are now deferred until
the server's clock catches up (footfall.server.ingest.DEFER_AHEAD_S), and the agents list says how far ahead the
box's clock is, so that an operator sets it right.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("clock_ahead_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("clock_ahead_s")
