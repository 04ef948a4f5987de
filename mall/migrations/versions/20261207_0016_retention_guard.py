"""retention guard: the database refuses to delete kept records

`retention_guard` (one row, closed) and the triggers of `mall.core.retention` on every table kept
fifteen years (政府采购法 第四十二条): a DELETE (and a TRUNCATE on PostgreSQL) fails, and so does an
UPDATE of the two hash-chained logs, unless a transaction opens the guard and closes it again.

The tables are listed here as they were at this revision. On SQLite, a later migration that rebuilds
one of them (a batch ALTER copies the table) must create its triggers again:
`tests/test_migrations.py` checks that every kept table has them at head.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mall.core import retention

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = tuple(
    """disclosure_records ledger_head orders order_lines order_events checkouts budget_lines
    budget_movements procedures procedure_items procedure_participants procedure_invites offers
    agreements agreement_suppliers agreement_products designations service_price_items listings
    listing_price_changes listing_price_requests listing_imports organizations users audit_log
    audit_head outbox""".split()
)


def upgrade() -> None:
    op.create_table(
        "retention_guard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_guard")),
    )
    guard = sa.table("retention_guard", sa.column("id"), sa.column("maintenance", sa.Boolean()))
    op.bulk_insert(guard, [{"id": 1, "maintenance": False}])
    for sql in retention.create_statements(op.get_bind().dialect.name, TABLES):
        op.execute(sql)


def downgrade() -> None:
    for sql in retention.drop_statements(op.get_bind().dialect.name, TABLES):
        op.execute(sql)
    op.drop_table("retention_guard")
