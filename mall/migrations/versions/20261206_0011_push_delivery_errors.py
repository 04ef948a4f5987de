"""push delivery errors

The delivery log and the subscription's last error kept the receiver's answer (a body snippet, an
exception text quoting it). They now keep one of a fixed set of kinds and the HTTP status code; the
old text is turned into its kind and dropped.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The only texts older versions wrote: "接收方返回 HTTP <code>[：<body>]", "请求超时，…",
# "无法连接接收方（<exception>）".
_KIND_OF_OLD = """CASE
    WHEN {text} = '' THEN ''
    WHEN {text} LIKE '接收方返回 HTTP %' THEN 'http_status'
    WHEN {text} LIKE '请求超时%' THEN 'timeout'
    ELSE 'connect_failed'
END"""

# For a downgrade: the fixed message of each kind (what the old columns are given back).
_OLD_TEXT = """CASE {kind}
    WHEN '' THEN ''
    WHEN 'http_status' THEN '接收方返回 HTTP ' || COALESCE(CAST({code} AS VARCHAR(10)), '')
    WHEN 'timeout' THEN '请求超时，未收到接收方完整答复'
    ELSE '无法连接接收方（' || {kind} || '）'
END"""


def upgrade() -> None:
    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_kind", sa.String(length=20), nullable=False, server_default=""))
    op.execute(
        "UPDATE push_deliveries SET error_kind = CASE WHEN ok THEN '' WHEN status_code IS NOT NULL "
        f"THEN 'http_status' ELSE {_KIND_OF_OLD.format(text='error')} END"
    )
    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.alter_column("error_kind", existing_type=sa.String(length=20), server_default=None)

    # Plain ALTER TABLE (no batch copy): push_deliveries references push_subscriptions, and SQLite
    # cannot drop a referenced table that has rows while foreign keys are on.
    op.add_column(
        "push_subscriptions",
        sa.Column("last_error_kind", sa.String(length=20), nullable=False, server_default=""),
    )
    op.add_column("push_subscriptions", sa.Column("last_status_code", sa.Integer(), nullable=True))
    op.execute(f"UPDATE push_subscriptions SET last_error_kind = {_KIND_OF_OLD.format(text='last_error')}")
    # The status code is the three digits after "接收方返回 HTTP " (11 characters).
    op.execute(
        "UPDATE push_subscriptions SET last_status_code = CAST(SUBSTR(last_error, 12, 3) AS INTEGER) "
        "WHERE last_error_kind = 'http_status'"
    )
    op.drop_column("push_subscriptions", "last_error")


def downgrade() -> None:
    op.add_column("push_subscriptions", sa.Column("last_error", sa.Text(), nullable=False, server_default=""))
    op.execute(
        "UPDATE push_subscriptions SET last_error = "
        + _OLD_TEXT.format(kind="last_error_kind", code="last_status_code")
    )
    op.drop_column("push_subscriptions", "last_status_code")
    op.drop_column("push_subscriptions", "last_error_kind")

    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE push_deliveries SET error = " + _OLD_TEXT.format(kind="error_kind", code="status_code"))
    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.drop_column("error_kind")
        batch_op.alter_column("error", existing_type=sa.Text(), server_default=None)
