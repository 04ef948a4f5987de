"""index failed logins

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:37:41.689930
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_action_target", "audit_log", ["action", "target", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_target", table_name="audit_log")
