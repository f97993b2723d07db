"""Per-site operator controls (demographics mode, k, raw-data retention, closing time) and what each zone's
people are (its ``measure``: zone passes, a camera's distinct visitors, entrance in or out).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("demographics", sa.String(16), nullable=False, server_default="full"))
        batch.add_column(sa.Column("k", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("closing_time", sa.String(5), nullable=True))
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("measure", sa.String(16), nullable=False, server_default="passes"))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("measure")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("closing_time")
        batch.drop_column("retention_days")
        batch.drop_column("k")
        batch.drop_column("demographics")
