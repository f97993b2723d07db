"""An agent key can be bound to a site (``api_keys.site_id``): it may then ingest for that site only.

An agent key unbound to a site could add counts it knew to any site's zone-hour, until a withheld cell released,
and read the withheld people back by subtraction (found by review). Existing keys stay unbound, as they were;
``footfall keys create --role agent --agent <id> --site <site>`` binds new ones.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("site_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("site_id")
