"""fulfilment payments

Deliveries (发货单) and their lines, acceptance reports (验收单) and their lines, invoices and
payments: the order's legal record from shipment to payment. Kept tables (mall.core.retention),
never deleted. Inspectors' names and what people write are encrypted at rest (text columns).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "order_deliveries",
    "order_delivery_lines",
    "acceptance_reports",
    "acceptance_report_lines",
    "order_invoices",
    "order_payments",
)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    when = mall.core.db.UTCDateTime(timezone=True)
    money = mall.core.db.Money()
    quantity = mall.core.db.Quantity()
    op.create_table(
        "order_deliveries",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=50), nullable=False),
        sa.Column("tracking_no", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("shipped_at", when, nullable=False),
        sa.Column("shipped_by", sa.Uuid(), nullable=False),
        sa.Column("received_at", when, nullable=True),
        sa.Column("received_by", sa.Uuid(), nullable=True),
        sa.Column("receipt_note", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("order_deliveries", "order_id", "orders"),
        _fk("order_deliveries", "shipped_by", "users"),
        _fk("order_deliveries", "received_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_deliveries")),
        sa.UniqueConstraint("order_id", "seq", name=op.f("uq_order_deliveries_order_id")),
    )
    op.create_table(
        "order_delivery_lines",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("quantity", quantity, nullable=False),
        sa.Column("received_quantity", quantity, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("order_delivery_lines", "delivery_id", "order_deliveries"),
        _fk("order_delivery_lines", "order_line_id", "order_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_delivery_lines")),
    )
    op.create_table(
        "acceptance_reports",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("inspectors", sa.Text(), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("made_at", when, nullable=False),
        sa.Column("made_by", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("acceptance_reports", "order_id", "orders"),
        _fk("acceptance_reports", "made_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_reports")),
        sa.UniqueConstraint("order_id", "seq", name=op.f("uq_acceptance_reports_order_id")),
    )
    op.create_table(
        "acceptance_report_lines",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("quantity", quantity, nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("refused_quantity", quantity, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("acceptance_report_lines", "report_id", "acceptance_reports"),
        _fk("acceptance_report_lines", "order_line_id", "order_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acceptance_report_lines")),
    )
    op.create_table(
        "order_invoices",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_code", sa.String(length=12), nullable=False),
        sa.Column("invoice_no", sa.String(length=20), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("amount", money, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("decided_at", when, nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("order_invoices", "order_id", "orders"),
        _fk("order_invoices", "recorded_by", "users"),
        _fk("order_invoices", "decided_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_invoices")),
    )
    op.create_table(
        "order_payments",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("voucher_no", sa.String(length=30), nullable=False),
        sa.Column("amount", money, nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        _fk("order_payments", "order_id", "orders"),
        _fk("order_payments", "recorded_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_payments")),
        sa.UniqueConstraint("order_id", "voucher_no", name=op.f("uq_order_payments_order_id")),
    )
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)
    # One invoice (code and number) is recorded once in the whole mall, unless it was rejected.
    op.create_index(
        "uq_order_invoices_live",
        "order_invoices",
        ["invoice_code", "invoice_no"],
        unique=True,
        postgresql_where=sa.text("status <> 'rejected'"),
        sqlite_where=sa.text("status <> 'rejected'"),
    )
    for sql in retention.create_statements(op.get_bind().dialect.name, TABLES):
        op.execute(sql)


INDEXES = (
    ("order_deliveries", "order_id"),
    ("order_delivery_lines", "delivery_id"),
    ("acceptance_reports", "order_id"),
    ("acceptance_report_lines", "report_id"),
    ("order_invoices", "order_id"),
    ("order_invoices", "invoice_no"),
    ("order_payments", "order_id"),
)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for name in retention.trigger_names(table):  # (the guard's function stays: other tables use it)
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))
    op.drop_index("uq_order_invoices_live", table_name="order_invoices")
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    for table in reversed(TABLES):
        op.drop_table(table)
