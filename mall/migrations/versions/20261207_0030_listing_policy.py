"""listing policy

Policy attributes of listings (catalog.policy): the 节能产品 and 环境标志产品 certificates with their
expiry, the origin (本国产品 / 进口产品) and the import approval's reference; and what an order line's
listing declared when it was ordered. Existing listings are declared domestic without certificates;
existing order lines declared nothing ("").

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTING_COLUMNS = (
    sa.Column("energy_cert_no", sa.String(length=60), nullable=False, server_default=""),
    sa.Column("energy_cert_until", sa.Date(), nullable=True),
    sa.Column("eco_cert_no", sa.String(length=60), nullable=False, server_default=""),
    sa.Column("eco_cert_until", sa.Date(), nullable=True),
    sa.Column("origin", sa.String(length=10), nullable=False, server_default="domestic"),
    sa.Column("import_approval_ref", sa.String(length=100), nullable=False, server_default=""),
)
LINE_COLUMNS = (
    sa.Column("green", sa.String(length=12), nullable=False, server_default=""),
    sa.Column("origin", sa.String(length=10), nullable=False, server_default=""),
)


def upgrade() -> None:
    for column in LISTING_COLUMNS:
        op.add_column("listings", column)
    for column in LINE_COLUMNS:
        op.add_column("order_lines", column)


def downgrade() -> None:
    # in place (SQLite 3.35+): a batch copy would drop and recreate tables others refer to
    for table, columns in (("order_lines", LINE_COLUMNS), ("listings", LISTING_COLUMNS)):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")
