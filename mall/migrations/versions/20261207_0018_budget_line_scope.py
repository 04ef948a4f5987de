"""budget line scope

A budget line carries the 品目 it may buy (mall.budgets.scope): a list of catalogue codes, '' for a
line that covers every 品目 (every line so far: nothing that was allowed before is refused now).
A plain ADD COLUMN: budget_lines is a kept table (mall.core.retention), never copied or dropped.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("budget_lines", sa.Column("scope", sa.String(length=300), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("budget_lines", "scope")
