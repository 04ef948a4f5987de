"""sme declarations

Suppliers' dated 中小企业声明函 replace the undated `organizations.is_sme` flag (mall.sme). Each order
records the size its supplier declared when it was made (`orders.supplier_scale`). The flag is
migrated: every order takes "sme" or "large" from its supplier's flag, and every supplier that carried
the flag gets a declaration of size "sme" (unsized) from today for a year, marked `migrated`, to be
renewed by a declaration of its own. Then the flag is dropped.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 20:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = ("sme_declarations",)
MIGRATED_STATEMENT = "由原“中小企业”标记迁移，未划分规模；请供应商出具本年度中小企业声明函。"


def upgrade() -> None:
    op.create_table(
        "sme_declarations",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("industry", sa.String(length=20), nullable=False),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("assets", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("size", sa.String(length=8), nullable=False),
        sa.Column("declared_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("statement", sa.String(length=2000), nullable=False),
        sa.Column("declared_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_sme_declarations_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sme_declarations")),
    )
    with op.batch_alter_table("sme_declarations", schema=None) as batch_op:
        batch_op.create_index("ix_sme_declarations_org_declared", ["org_id", "declared_on"], unique=False)
    op.add_column("orders", sa.Column("supplier_scale", sa.String(length=8), nullable=False, server_default=""))

    bind = op.get_bind()
    # every order: its supplier's flag, as it stood (the deal was made under it)
    bind.execute(
        sa.text(
            "UPDATE orders SET supplier_scale = CASE WHEN (SELECT is_sme FROM organizations o"
            " WHERE o.id = orders.supplier_org_id) THEN 'sme' ELSE 'large' END"
        )
    )
    today = datetime.now(UTC).date()
    rows = bind.execute(
        sa.text("SELECT id FROM organizations WHERE kind = 'supplier' AND is_sme ORDER BY id")
    ).all()
    table = sa.table(
        "sme_declarations",
        sa.column("id", sa.Uuid()),
        sa.column("org_id", sa.Uuid()),
        sa.column("industry", sa.String()),
        sa.column("size", sa.String()),
        sa.column("declared_on", sa.Date()),
        sa.column("valid_until", sa.Date()),
        sa.column("source", sa.String()),
        sa.column("statement", sa.String()),
        sa.column("declared_at", mall.core.db.UTCDateTime(timezone=True)),
    )
    until: date = today + timedelta(days=365)
    if rows:
        op.bulk_insert(
            table,
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(str(r[0])),
                    "industry": "",
                    "size": "sme",
                    "declared_on": today,
                    "valid_until": until,
                    "source": "migrated",
                    "statement": MIGRATED_STATEMENT,
                    "declared_at": datetime.now(UTC),
                }
                for r in rows
            ],
        )
    # SQLite 3.35+ drops a column in place (a batch copy would drop and recreate the table that
    # every other table refers to, with its retention triggers)
    op.execute("ALTER TABLE organizations DROP COLUMN is_sme")
    for sql in retention.create_statements(bind.dialect.name, KEPT):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in KEPT:
        for name in retention.trigger_names(table):
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    # the flag comes back true for every organization, as it was created (its history is in the orders)
    op.add_column("organizations", sa.Column("is_sme", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute("ALTER TABLE orders DROP COLUMN supplier_scale")  # in place (see upgrade)
    with op.batch_alter_table("sme_declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_sme_declarations_org_declared")
    op.drop_table("sme_declarations")
