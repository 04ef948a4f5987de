"""whole order line specs

An order line made from an inquiry or auction carries the requirement's whole specification (up to
1,000 characters); it used to be cut to the 200 characters of a listing's model, and the published
deal record lost the rest.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # order_lines is referenced by no table, so SQLite's batch copy of it is safe.
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "spec_model", existing_type=sa.String(length=200), type_=sa.String(length=1000), existing_nullable=False
        )


def downgrade() -> None:
    # Lines longer than the old width keep their first 200 characters: the old schema cannot hold more.
    op.execute("UPDATE order_lines SET spec_model = SUBSTR(spec_model, 1, 200) WHERE LENGTH(spec_model) > 200")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "spec_model", existing_type=sa.String(length=1000), type_=sa.String(length=200), existing_nullable=False
        )
