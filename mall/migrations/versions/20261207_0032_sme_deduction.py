"""sme deduction

The 小微企业 price deduction a buyer may enable in an inquiry or auction: the rate it was published
with (None: not enabled).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 20:04:16.751858
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("procedures", sa.Column("sme_deduction", sa.Numeric(precision=4, scale=3), nullable=True))


def downgrade() -> None:
    # in place (SQLite 3.35+): a batch copy would drop and recreate a table others refer to
    op.execute("ALTER TABLE procedures DROP COLUMN sme_deduction")
