"""notifications

`notifications`: the message centre (消息中心), one row per notice per user, unique by (user, key) so
that the worker turning an outbox row into notices twice stores each once; `notification_prefs`:
each user's e-mail (encrypted), digest and SMS choices. Not part of any order's legal record: not a
kept table (mall.core.retention); the worker deletes notices older than `notification_keep_days`
(docs/decisions.md, 2026-12-07).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mall.core.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = mall.core.db.UTCDateTime(timezone=True)
    op.create_table(
        "notifications",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=500), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("read_at", when, nullable=True),
        sa.Column("mail_state", sa.String(length=10), nullable=False),
        sa.Column("mailed_at", when, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_notifications_user_id")),
    )
    op.create_index(
        "ix_notifications_inbox", "notifications", ["user_id", "read_at", "created_at"], unique=False
    )
    op.create_index(op.f("ix_notifications_mail_state"), "notifications", ["mail_state"], unique=False)
    op.create_table(
        "notification_prefs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("email_on", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("sms_on", sa.Boolean(), nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notification_prefs_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_prefs")),
    )


def downgrade() -> None:
    op.drop_table("notification_prefs")
    op.drop_index(op.f("ix_notifications_mail_state"), table_name="notifications")
    op.drop_index("ix_notifications_inbox", table_name="notifications")
    op.drop_table("notifications")
