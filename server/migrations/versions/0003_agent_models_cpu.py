"""Agents report which precision of each model they serve (after the parity self-check) and their CPU.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("models_json", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("cpu_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("cpu_json")
        batch.drop_column("models_json")
