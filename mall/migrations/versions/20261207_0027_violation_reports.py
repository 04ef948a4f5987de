"""violation reports

Buyers' violation reports against suppliers, with their evidence files (kept), and the report a
sanction decided. The column is added in place: rebuilding `sanctions` would drop its retention guard.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 17:17:42.593802
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
import mall.core.encryption
from mall.core import retention

KEPT = ("violation_reports",)


revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "violation_reports",
        sa.Column("report_no", sa.String(length=24), nullable=False),
        sa.Column("reporter_org_id", sa.Uuid(), nullable=False),
        sa.Column("reporter_user_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("description", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("filed_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decide_due_at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", mall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decision_reason", mall.core.encryption.EncryptedText(), nullable=False),
        sa.Column("sanction_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_violation_reports_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_violation_reports_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_org_id"],
            ["organizations.id"],
            name=op.f("fk_violation_reports_reporter_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_user_id"], ["users.id"], name=op.f("fk_violation_reports_reporter_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["sanction_id"], ["sanctions.id"], name=op.f("fk_violation_reports_sanction_id_sanctions")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_org_id"],
            ["organizations.id"],
            name=op.f("fk_violation_reports_supplier_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violation_reports")),
        sa.UniqueConstraint("report_no", name=op.f("uq_violation_reports_report_no")),
    )
    with op.batch_alter_table("violation_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_violation_reports_filed_at"), ["filed_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_violation_reports_reporter_org_id"), ["reporter_org_id"], unique=False
        )
        batch_op.create_index("ix_violation_reports_status_due", ["status", "decide_due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_violation_reports_supplier_org_id"), ["supplier_org_id"], unique=False
        )

    op.add_column("sanctions", sa.Column("report_id", sa.Uuid(), nullable=True))
    for sql in retention.create_statements(op.get_bind().dialect.name, KEPT):
        op.execute(sql)


def downgrade() -> None:
    op.drop_column("sanctions", "report_id")
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in KEPT:
        for name in retention.trigger_names(table):  # (the guard's function stays: other tables use it)
            op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (f' ON "{table}"' if postgres else ""))

    with op.batch_alter_table("violation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_violation_reports_supplier_org_id"))
        batch_op.drop_index("ix_violation_reports_status_due")
        batch_op.drop_index(batch_op.f("ix_violation_reports_reporter_org_id"))
        batch_op.drop_index(batch_op.f("ix_violation_reports_filed_at"))

    op.drop_table("violation_reports")
