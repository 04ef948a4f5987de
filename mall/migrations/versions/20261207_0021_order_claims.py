"""after-sales claims

`order_claims`: a buyer's claim (return, exchange, repair) on an accepted order, the supplier's
answer and its deadline, and the outcome the buyer records. Part of the order's file: a kept table
(mall.core.retention), never deleted.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = mall.core.db.UTCDateTime(timezone=True)
    op.create_table(
        "order_claims",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", when, nullable=False),
        sa.Column("opened_by", sa.Uuid(), nullable=False),
        sa.Column("answer_due_at", when, nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_at", when, nullable=True),
        sa.Column("answered_late", sa.Boolean(), nullable=False),
        sa.Column("closed_at", when, nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["opened_by"], ["users.id"], name=op.f("fk_order_claims_opened_by_users")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_claims_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["supplier_org_id"], ["organizations.id"], name=op.f("fk_order_claims_supplier_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_claims")),
    )
    for column in ("order_id", "supplier_org_id", "status"):
        op.create_index(op.f(f"ix_order_claims_{column}"), "order_claims", [column], unique=False)
    for sql in retention.create_statements(op.get_bind().dialect.name, ("order_claims",)):
        op.execute(sql)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in retention.trigger_names("order_claims"):  # (the guard's function stays: other tables use it)
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (' ON "order_claims"' if postgres else ""))
    for column in ("status", "supplier_org_id", "order_id"):
        op.drop_index(op.f(f"ix_order_claims_{column}"), table_name="order_claims")
    op.drop_table("order_claims")
