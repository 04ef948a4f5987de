"""budget adjustments; a password to change at the next login

`budget_adjustments`: every 追加 (increase) and 调减 (decrease) of a budget line's amount, with the
amounts before and after, the reason and who made it. Kept like the other budget records
(mall.core.retention): never deleted.

`users.must_change_password`: set when the system administrator resets a user's password (the
temporary one is shown once); the user can do nothing but change it until they do.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db
from mall.core import retention

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_adjustments",
        sa.Column("budget_line_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount", mall.core.db.Money(), nullable=False),
        sa.Column("amount_before", mall.core.db.Money(), nullable=False),
        sa.Column("amount_after", mall.core.db.Money(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("at", mall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_line_id"],
            ["budget_lines.id"],
            name=op.f("fk_budget_adjustments_budget_line_id_budget_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["by_user_id"], ["users.id"], name=op.f("fk_budget_adjustments_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_adjustments")),
    )
    op.create_index(
        op.f("ix_budget_adjustments_budget_line_id"), "budget_adjustments", ["budget_line_id"], unique=False
    )
    for sql in retention.create_statements(op.get_bind().dialect.name, ("budget_adjustments",)):
        op.execute(sql)
    op.add_column(
        "users", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("users", "must_change_password")
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in retention.trigger_names("budget_adjustments"):
        op.execute(f'DROP TRIGGER IF EXISTS "{name}"' + (' ON "budget_adjustments"' if postgres else ""))
    op.drop_index(op.f("ix_budget_adjustments_budget_line_id"), table_name="budget_adjustments")
    op.drop_table("budget_adjustments")
